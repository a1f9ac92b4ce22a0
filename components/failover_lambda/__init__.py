"""The region-health Lambda: deployed as is, so it imports nothing from Pulumi."""
