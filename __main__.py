"""Pulumi entry point: the stack's role (from config) picks the builder in stacks/."""

import stacks

stacks.main()
