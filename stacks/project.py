"""What every config module shares: the project's name and root, and the section base."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationInfo

from components.settings import Settings, camel

PROJECT = "trading-infra"
"""The Pulumi project name, and so the namespace of the program's own config keys."""

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""Relative paths in config (build contexts) are resolved against the project root."""

REGION_KEY = "aws:region"


DEFAULT_EXCHANGE_ACCESS_REGIONS = ("ap-southeast-1", "eu-central-1")
"""Regions from which Binance.com accepts API requests (it refuses us-east-1)."""


class Section(Settings):
    """Config object conventions (``components.settings.Settings``)."""


def must_be_secret(value: Any, info: ValidationInfo) -> Any:
    """A secret config value must reach the program encrypted: stored with
    ``pulumi config set --secret`` (its key among the context's ``secret_keys``)."""
    secret_keys = (info.context or {}).get("secret_keys", ())
    key = f"{PROJECT}:{camel(str(info.field_name))}"
    if value and key not in secret_keys:
        raise ValueError(
            "is stored in plain text; remove it from the stack file and set it with "
            "`pulumi config set --secret`"
        )
    return value


def default_tags(stack: str, region: str) -> dict[str, str]:
    """Tags a stack's AWS provider puts on every taggable resource."""
    return {"project": PROJECT, "stack": stack, "region": region, "managed-by": "pulumi"}
