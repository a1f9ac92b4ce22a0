"""The base of every settings model: what a component can be configured with, written
once (type, bounds, default, docstring), in the stack config's conventions so the config
sections are these models (camelCase keys, no unknown key, no type coercion)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


def camel(name: str) -> str:
    """``elb_5xx_count`` -> ``elb5xxCount``: Pulumi's key style, digits left alone."""
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


Hostname = Annotated[
    str, Field(max_length=253, pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
]
"""A DNS hostname, lower case (``api.example.com``)."""


class Settings(BaseModel):
    """Config object conventions: camelCase keys, no unknown keys, no type coercion."""

    model_config = ConfigDict(
        alias_generator=camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=True,
        # The docstring under each field is its description: docs/config.md is made of them.
        use_attribute_docstrings=True,
    )


def refuse_set(model: BaseModel, names: Iterable[str], problem: str) -> None:
    """A ValueError with one ``@key: problem`` line for each of ``names`` that ``model``
    was given explicitly (``model_fields_set``: a default is not a choice), so every
    clash is reported at once; nothing when none was given."""
    given = [camel(name) for name in names if name in model.model_fields_set]
    if given:
        raise ValueError("\n".join(f"@{key}: {problem}" for key in given))


CLOUDWATCH_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557}
    | {2922, 3288, 3653}
)
"""The values CloudWatch Logs accepts for a log group's retention."""


def retention(value: int) -> int:
    """A CloudWatch Logs retention, or a ValueError naming the accepted ones."""
    if value not in CLOUDWATCH_RETENTION_DAYS:
        allowed = ", ".join(str(days) for days in sorted(CLOUDWATCH_RETENTION_DAYS))
        raise ValueError(f"{value} is not a CloudWatch Logs retention; use one of {allowed}")
    return value
