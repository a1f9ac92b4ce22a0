"""Command-line tools that work without the Pulumi CLI or a cloud account."""
