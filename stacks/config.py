"""Typed, validated stack configuration.

Every stack reads its config once, here, before any resource is registered. Values are
validated as a whole and every problem is reported at once, each naming the full config
key (``trading-infra:network.cidr``) and how to fix it.

Pulumi hands the program every config value as a string: scalars as written, objects
and lists as JSON. Top-level values are decoded as JSON where they parse, so
``production: true`` arrives as a boolean while ``role: primary`` stays a string;
inside objects, YAML types are kept and checked strictly (``"3"`` is not a number).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic_core import ErrorDetails

from stacks.fleet_config import FleetConfig, FleetStackConfig
from stacks.project import DEFAULT_EXCHANGE_ACCESS_REGIONS, PROJECT, PROJECT_ROOT, REGION_KEY
from stacks.regional_config import (
    FailoverConfig,
    NetworkConfig,
    RegionalStackConfig,
)

__all__ = [
    "DEFAULT_EXCHANGE_ACCESS_REGIONS",
    "MODELS",
    "PROJECT",
    "PROJECT_ROOT",
    "REGION_KEY",
    "REQUIRED_SECRETS",
    "ConfigError",
    "FailoverConfig",
    "FleetConfig",
    "FleetStackConfig",
    "NetworkConfig",
    "RegionalStackConfig",
    "StackConfig",
    "load_stack_config",
    "local_stack_regions",
    "parse_stack_config",
]


class ConfigError(pulumi.RunError):
    """All of a stack's config problems, raised before any resource is registered.

    A ``RunError`` so that ``pulumi up`` prints the messages without a traceback.
    """

    def __init__(self, stack: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"stack {stack!r} has {len(self.problems)} config error(s):\n{lines}")


StackConfig = RegionalStackConfig | FleetStackConfig
"""The typed config of any stack."""

MODELS: dict[str, type[RegionalStackConfig] | type[FleetStackConfig]] = {
    "primary": RegionalStackConfig,
    "fallback": RegionalStackConfig,
    "vps-fleet": FleetStackConfig,
}
"""The config model of each stack role."""

REQUIRED_SECRETS: dict[str, tuple[str, ...]] = {
    "vps-fleet": ("sshPrivateKey", "grafanaAdminPassword", "questdbPassword", "backupPassword")
}
"""Secret keys a role cannot do without; never committed, so offline plans stand in a
placeholder for them."""


def _decode(value: Any) -> Any:
    """Decode a top-level value the way Pulumi serialised it (JSON where it parses)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _key_for(loc: tuple[int | str, ...]) -> str:
    """``("network", "cidr")`` -> ``trading-infra:network.cidr``; lists as ``[i]``."""
    if not loc:
        return PROJECT
    head, *rest = loc
    key = str(head) if str(head) == REGION_KEY else f"{PROJECT}:{head}"
    for part in rest:
        key += f"[{part}]" if isinstance(part, int) else f".{part}"
    return key


def _keys_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The valid keys of the object at ``loc`` inside ``model``, for typo suggestions."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = next(
            (f for name, f in current.model_fields.items() if part in (name, f.alias)), None
        )
        if field is None:
            return []
        current = _model_in(field.annotation)
        if current is None:
            return []
    return [field.alias or name for name, field in current.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    loc = error["loc"]
    # Errors of a model validator carry the model's own location; name the object.
    key = _key_for(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        candidates = _keys_at(model, loc[:-1])
        if len(loc) == 1:
            candidates = [f"{PROJECT}:{c}" if c != REGION_KEY else c for c in candidates]
            name = key
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(candidates)}"
        return f"{key}: unknown key; {hint}"
    if kind == "missing":
        return f"{key}: required but not set; set it in the stack's Pulumi.<stack>.yaml"
    message = error["msg"].removeprefix("Value error, ")
    if kind.endswith("_type") or kind == "literal_error":
        return f"{key}: {message} (got {error['input']!r})"
    return "\n".join(_at(key, line) for line in message.split("\n"))


def _at(key: str, problem: str) -> str:
    """A model validator's problem at ``key``; ``@hosts[2].name: ...`` names the
    offending key inside the object."""
    if problem.startswith("@"):
        where, _, problem = problem[1:].partition(": ")
        return f"{key}{':' if key == PROJECT else '.'}{where}: {problem}"
    return f"{key}: {problem}"


def local_stack_regions(root: Path) -> dict[str, str]:
    """Stack name -> ``aws:region`` of every ``Pulumi.<stack>.yaml`` in ``root``: lets the
    edge's config see where its fallback stack deploys."""
    regions = {}
    for path in sorted(root.glob("Pulumi.*.yaml")):
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            continue
        region = (document.get("config") or {}).get(REGION_KEY)
        if isinstance(region, str):
            regions[path.name[len("Pulumi.") : -len(".yaml")]] = region
    return regions


def parse_stack_config(
    raw: Mapping[str, Any],
    stack: str,
    secret_keys: Collection[str] = (),
    *,
    stack_regions: Mapping[str, str] | None = None,
    check_artifacts: bool = False,
) -> StackConfig:
    """Validate a stack's raw config (``{"trading-infra:network": "{...}"}``).

    Keys of other namespaces than the project's are provider settings and pass through,
    except ``aws:region``, the stack's region. ``stack_regions`` (stack -> region, from
    the project's stack files) lets cross-stack settings be checked; ``check_artifacts``
    requires built artifacts (the Lambda layer) to exist, as a real deploy does (offline
    plans do not package them). Raises ``ConfigError`` listing every problem.
    """
    document: dict[str, Any] = {}
    for key, value in raw.items():
        namespace, _, name = key.partition(":")
        if key == REGION_KEY:
            document[REGION_KEY] = value
        elif namespace == PROJECT:
            document[name] = _decode(value)
    role = document.get("role")
    model = MODELS.get(role) if isinstance(role, str) else None
    if model is None:
        got = "not set" if role is None else f"{role!r}"
        raise ConfigError(
            stack,
            [f"{PROJECT}:role: {got}; set one of {', '.join(MODELS)} in Pulumi.{stack}.yaml"],
        )
    try:
        return model.model_validate(
            document,
            context={
                "secret_keys": set(secret_keys),
                "stack": stack,
                "role": role,
                "region": document.get(REGION_KEY),
                "stack_regions": dict(stack_regions or {}),
                "check_artifacts": check_artifacts,
            },
        )
    except ValidationError as error:
        problems = sorted(
            {line for detail in error.errors() for line in _describe(detail, model).split("\n")}
        )
        raise ConfigError(stack, problems) from None


def load_stack_config() -> StackConfig:
    """Read and validate the running stack's config from the Pulumi engine.

    ``pulumi.Config`` reads one key at a time and cannot list the keys that were set, so
    a misspelt key would go unnoticed; the runtime's config map has them all.
    """
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = {*runtime_config.get_config_secret_keys_env(), *runtime_config._SECRET_KEYS.get()}
    return parse_stack_config(
        raw,
        pulumi.get_stack(),
        secret_keys,
        stack_regions=local_stack_regions(Path.cwd()),
        check_artifacts=not _mocked(),
    )


def _mocked() -> bool:
    """Whether Pulumi's mock runtime runs the program (``ops plan``, tests): it packages
    no archive, so built artifacts need not exist; a real preview or up does."""
    from pulumi.runtime import mocks, settings

    monitor = settings.SETTINGS.monitor  # pyright: ignore[reportAttributeAccessIssue]
    return isinstance(monitor, mocks.MockMonitor)
