"""Stack composition: typed config in, components wired together, outputs exported."""

from __future__ import annotations

from stacks.config import FleetStackConfig, load_stack_config
from stacks.fleet import build_fleet
from stacks.regional import build_primary, build_regional


def main() -> None:
    """Validate the running stack's config, then build the stack its role names."""
    config = load_stack_config()
    if isinstance(config, FleetStackConfig):
        build_fleet(config)
    elif config.role == "primary":
        build_primary(config)
    else:
        build_regional(config)
