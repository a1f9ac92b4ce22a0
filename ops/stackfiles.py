"""Read a stack's config the way the Pulumi CLI hands it to the program."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ops.runtime import SECRET_PLACEHOLDER


class StackFileError(Exception):
    """The stack's Pulumi.<stack>.yaml is missing or unreadable."""


@dataclass(frozen=True)
class StackConfigFile:
    """A stack's config as the engine passes it: every value a string."""

    values: dict[str, str]
    secret_keys: list[str]


def _has_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_has_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secure(v) for v in value)
    return False


def _replace_secure(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER
        return {key: _replace_secure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_secure(item) for item in value]
    return value


def _as_engine_string(value: Any) -> str:
    """Scalars as the CLI writes them (``true``, ``3``), objects and lists as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _qualified(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _project_defaults(project_file: dict[str, Any], project: str) -> dict[str, Any]:
    """Values of Pulumi.yaml's project-level ``config`` block (defaults for every stack)."""
    defaults: dict[str, Any] = {}
    for key, spec in (project_file.get("config") or {}).items():
        if isinstance(spec, dict) and "default" in spec:
            defaults[_qualified(project, key)] = spec["default"]
        elif isinstance(spec, dict) and "value" in spec:
            defaults[_qualified(project, key)] = spec["value"]
        elif not isinstance(spec, dict):
            defaults[_qualified(project, key)] = spec
    return defaults


def read_project(root: Path) -> dict[str, Any]:
    return yaml.safe_load((root / "Pulumi.yaml").read_text())


def read_stack_config(root: Path, stack: str) -> StackConfigFile:
    """Merge Pulumi.yaml's defaults with Pulumi.<stack>.yaml; secure values become
    secret placeholders and their keys are marked secret."""
    project_file = read_project(root)
    project = project_file["name"]
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise StackFileError(f"no {path.name}; known stacks: {', '.join(stacks)}")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise StackFileError(f"{path.name} is not valid YAML: {error}") from None
    merged = _project_defaults(project_file, project)
    for key, value in (document.get("config") or {}).items():
        merged[_qualified(project, key)] = value
    secret_keys = sorted(key for key, value in merged.items() if _has_secure(value))
    values = {key: _as_engine_string(_replace_secure(value)) for key, value in merged.items()}
    return StackConfigFile(values=values, secret_keys=secret_keys)
