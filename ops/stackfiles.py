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


def _key_problems(value: Any, path: str) -> list[str]:
    """Mapping keys YAML did not read as strings (``NO:`` is false in YAML 1.1)."""
    problems: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(
                    f"{path}: key {key!r} is not a string (YAML reads unquoted NO, YES, ON, "
                    "OFF, Y, N as booleans and digits as numbers); quote it, e.g. 'NO': eu"
                )
                continue
            problems += _key_problems(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems += _key_problems(item, f"{path}[{index}]")
    return problems


def _leaves(value: Any, path: str) -> list[tuple[str, bool]]:
    """(path, is secure) of every value under ``value``; a ``secure:`` object is a leaf."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return [(path, True)]
        return [leaf for key, item in value.items() for leaf in _leaves(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, f"{path}[{i}]")]
    return [(path, False)]


def plain_text_in_secrets(key: str, value: Any) -> list[str]:
    """Plain values inside an object that also holds ``secure:`` values. The engine marks
    the whole key secret, so the program cannot tell; the stack file can."""
    leaves = _leaves(value, key)
    if not any(secure for _, secure in leaves):
        return []
    return [
        f"{path}: stored in plain text beside encrypted values; set it with "
        f"`pulumi config set --secret --path '{path.split(':', 1)[-1]}' VALUE`"
        for path, secure in leaves
        if not secure
    ]


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
    problems: list[str] = []
    for key, value in (document.get("config") or {}).items():
        merged[_qualified(project, key)] = value
        problems += _key_problems(value, _qualified(project, key))
        problems += plain_text_in_secrets(_qualified(project, key), value)
    if problems:
        raise StackFileError(f"{path.name}:\n  " + "\n  ".join(problems))
    secret_keys = sorted(key for key, value in merged.items() if _has_secure(value))
    values = {key: _as_engine_string(_replace_secure(value)) for key, value in merged.items()}
    return StackConfigFile(values=values, secret_keys=secret_keys)
