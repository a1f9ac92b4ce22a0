"""Stack composition: typed config in, components wired together, outputs exported."""

from __future__ import annotations

from collections.abc import Callable

from stacks.config import StackConfig, load_stack_config
from stacks.regional import build_primary, build_regional

BUILDERS: dict[str, Callable[[StackConfig], object]] = {
    "primary": build_primary,
    "fallback": build_regional,
}
"""The builder for each stack role."""


def main() -> None:
    """Validate the running stack's config, then build the stack its role names."""
    config = load_stack_config()
    BUILDERS[config.role](config)
