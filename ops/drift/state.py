"""Read a ``pulumi stack export`` (checkpoint format): resources with their ids, inputs,
outputs, parents and providers. Secret values stay opaque and are never printed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ops.runtime import SECRET_PLACEHOLDER

SIG = "4dabf18193072939515e22adb298388d"
"""The key marking Pulumi's special values in a checkpoint."""
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 (a format marker)
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
SECRET = SECRET_PLACEHOLDER
"""What a secret value reads as: the same placeholder as in plans."""


class StateError(Exception):
    """The export is not a Pulumi checkpoint this tool can read."""


def _opaque(value: Any, reveal: bool = False) -> Any:
    """Secrets become ``[secret]`` (or, with ``reveal``, their plaintext when the export
    was made with ``--show-secrets``); assets become ``{"text"|"path", "hash"}``."""
    if isinstance(value, dict):
        if value.get(SIG) == SECRET_SIG:
            if reveal and "plaintext" in value:
                return _opaque(json.loads(value["plaintext"]), reveal)
            return SECRET
        if value.get(SIG) == ASSET_SIG:
            return {k: v for k, v in value.items() if k in ("text", "path", "hash")}
        return {k: _opaque(v, reveal) for k, v in value.items()}
    if isinstance(value, list):
        return [_opaque(v, reveal) for v in value]
    return value


@dataclass(frozen=True)
class StateResource:
    """One resource of the checkpoint."""

    urn: str
    type: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    provider: str | None
    parent: str | None
    revealed_inputs: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """Inputs with secrets in plaintext where the export carries them (never printed)."""
    ignore_changes: tuple[str, ...] = ()
    """The program's ``ignoreChanges`` for it: property paths whose changes are not its."""

    def get(self, key: str, default: Any = None) -> Any:
        """An output, else the input of that name (outputs are what the provider read)."""
        if key in self.outputs:
            return self.outputs[key]
        return self.inputs.get(key, default)


@dataclass(frozen=True)
class StackState:
    """The checkpoint's custom resources, and each one's region."""

    resources: list[StateResource]
    regions: dict[str, str]
    """Resource URN -> AWS region, from its provider's ``region``."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """The stack's outputs."""
    stack: str | None = None
    """The stack the export is of (from its URNs, ``urn:pulumi:<stack>::...``)."""
    tag_scopes: frozenset[tuple[str, tuple[tuple[str, str], ...]]] = frozenset()
    """(region, default tags) of each AWS provider: where the tag scan looks, for what."""

    @property
    def stack_tags(self) -> dict[str, str]:
        """The default tags every provider of the stack shares."""
        common: set[tuple[str, str]] | None = None
        for _, tags in self.tag_scopes:
            common = set(tags) if common is None else common & set(tags)
        return dict(sorted(common or ()))

    def of_type(self, type_: str) -> list[StateResource]:
        return [r for r in self.resources if r.type == type_]


def require_stack(state: StackState, stack: str) -> None:
    """Refuse a state exported from another stack (``org/`` prefixes aside)."""
    if state.stack is not None and state.stack.rsplit("/", 1)[-1] != stack.rsplit("/", 1)[-1]:
        raise StateError(
            f"the state is stack {state.stack!r}'s, not {stack!r}'s: export the stack you "
            f"name (`pulumi stack export --stack {stack}`) or name the state's stack"
        )


def parse_state(text: str, default_region: str | None = None) -> StackState:
    try:
        document = json.loads(text)
        raw = document["deployment"].get("resources") or []
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
        raise StateError(f"not a `pulumi stack export` document: {error}") from None
    providers: dict[str, str] = {}
    tag_scopes: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    resources: list[StateResource] = []
    stack_outputs: dict[str, Any] = {}
    stacks = {
        str(item.get("urn", "")).split("::", 1)[0].removeprefix("urn:pulumi:")
        for item in raw
        if isinstance(item, dict) and str(item.get("urn", "")).startswith("urn:pulumi:")
    }
    for item in raw:
        type_ = item.get("type", "")
        if type_ == "pulumi:pulumi:Stack":
            stack_outputs = _opaque(item.get("outputs") or {})
            continue
        if type_.startswith("pulumi:providers:aws"):
            settings = item.get("outputs") or item.get("inputs") or {}
            region = settings.get("region")
            if region:
                providers[f"{item['urn']}::{item.get('id', '')}"] = region
                if tags := _default_tags(settings.get("defaultTags")):
                    tag_scopes.add((region, tags))
            continue
        if not item.get("custom") or type_.startswith("pulumi:"):
            continue
        resources.append(
            StateResource(
                urn=item["urn"],
                type=type_,
                id=str(item.get("id", "")),
                inputs=_opaque(item.get("inputs") or {}),
                outputs=_opaque(item.get("outputs") or {}),
                provider=item.get("provider"),
                parent=item.get("parent"),
                revealed_inputs=_opaque(item.get("inputs") or {}, reveal=True),
                ignore_changes=tuple(item.get("ignoreChanges") or ()),
            )
        )
    regions = {}
    for resource in resources:
        region = providers.get(resource.provider or "") or default_region
        if region:
            regions[resource.urn] = region
    stack = stacks.pop() if len(stacks) == 1 else None
    return StackState(
        resources=resources,
        regions=regions,
        outputs=stack_outputs,
        stack=stack,
        tag_scopes=frozenset(tag_scopes),
    )


def _default_tags(value: Any) -> tuple[tuple[str, str], ...]:
    """A provider's ``defaultTags`` (a JSON string in the checkpoint, as Pulumi stores
    provider settings, or already a mapping) as sorted pairs."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return ()
    tags = value.get("tags") if isinstance(value, dict) else None
    if not isinstance(tags, dict):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in tags.items()))
