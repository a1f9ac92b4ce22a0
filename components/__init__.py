"""Reusable Pulumi component resources. They know nothing of stacks or config."""
