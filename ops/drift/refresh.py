"""The provider's own view of drift, folded into the scan's findings.

``pulumi refresh --preview-only --json`` has every provider read every resource of the
stack and compare it with the state, attribute by attribute: what the boto3 scan cannot
compare (a type without handler, a presence-only type, an attribute no handler reads)
it does. It needs the Pulumi CLI, the provider plugins and a role that may read every
resource's configuration, so it runs in the drift workflow; the boto3 scan stays the
fast, offline path, and the only one that finds unmanaged resources and reads the VPS
hosts.

The document is the CLI's *preview digest* (``--json`` on a preview prints one JSON
document, not an event stream). Its shape, from the Pulumi sources
(``pkg/display/json.go``: ``PreviewDigest``, ``PreviewStep``, ``PropertyDiff``;
``pkg/backend/display/json.go``: ``ShowPreviewDigest``)::

    {"config": {...}, "steps": [{"op", "urn", "provider", "oldState", "newState",
     "diffReasons", "replaceReasons", "detailedDiff": {path: {"kind", "inputDiff"}}}],
     "diagnostics": [{"urn", "message", "severity"}], "changeSummary": {op: n},
     "duration": ns, "maybeCorrupt": bool}

A refresh step is ``op: "refresh"``; when the provider read something else, the digest
rewrites it to ``"update"`` (with ``detailedDiff``, old state → live) or ``"delete"``
(the resource is gone). ``oldState``/``newState`` are ``apitype.ResourceV3`` with secrets
already replaced by ``"[secret]"``.

``pulumi preview --refresh --json`` is not accepted: its steps compare the *program*
with the refreshed state, so an undeployed commit would read as drift and the live
values sit on the other side of each diff. Its ``create``/``replace`` steps are refused
with that advice.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ops.drift.aws import NOT_CHECKED, REFINE
from ops.drift.model import Diff, Finding
from ops.drift.state import StackState, StateResource

REFRESH_COMMAND = (
    "refresh",
    "--preview-only",
    "--json",
    "--non-interactive",
    "--run-program=false",
)
"""What the drift workflow runs (``pulumi`` + these + ``--stack S``). ``--run-program=false``
pins that the program is not run: a refresh needs the state and the providers only."""

UNCHANGED_OPS = frozenset({"refresh", "same", "read"})
"""Ops of a resource whose provider read matches the state."""

_SEVERITY_ERROR = "error"


class RefreshError(Exception):
    """The document is not a refresh preview digest."""


@dataclass(frozen=True)
class ProviderView:
    """What the providers read, per resource URN."""

    steps: dict[str, dict[str, Any]]
    """URN -> its (last) step."""
    errors: dict[str | None, list[str]]
    """URN (None: the whole run) -> error diagnostics."""
    stack: str | None


def parse_refresh(text: str) -> ProviderView:
    """Read a preview digest; a clear error, naming the command to run, on anything else."""
    advice = "give the output of `pulumi refresh --preview-only --json --stack STACK`"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise RefreshError(f"the refresh output is not JSON ({error}): {advice}") from None
    if not isinstance(document, dict) or "deployment" in document:
        what = "a `pulumi stack export`" if isinstance(document, dict) else "not a JSON object"
        raise RefreshError(f"the refresh output is {what}, not a preview digest: {advice}")
    steps = document.get("steps") or []
    diagnostics = document.get("diagnostics") or []
    if not isinstance(steps, list) or not isinstance(diagnostics, list):
        raise RefreshError(f"the refresh output's steps/diagnostics are not lists: {advice}")
    if not steps and not diagnostics and "changeSummary" not in document:
        raise RefreshError(f"the refresh output has no steps, diagnostics or summary: {advice}")
    by_urn: dict[str, dict[str, Any]] = {}
    for step in steps:
        if not isinstance(step, dict) or not isinstance(step.get("urn"), str):
            raise RefreshError(f"a step without a URN: {step!r:.120}: {advice}")
        op = step.get("op")
        if op not in UNCHANGED_OPS and op not in ("update", "delete"):
            raise RefreshError(
                f"a {op!r} step ({step['urn']}): this is not a refresh preview "
                f"(`pulumi preview --refresh` compares the program, not the live resources): "
                f"{advice}"
            )
        by_urn[step["urn"]] = step
    errors: dict[str | None, list[str]] = {}
    for diagnostic in diagnostics:
        if isinstance(diagnostic, dict) and diagnostic.get("severity") == _SEVERITY_ERROR:
            errors.setdefault(diagnostic.get("urn") or None, []).append(
                str(diagnostic.get("message", "")).strip()
            )
    stacks = {urn.split("::", 1)[0].removeprefix("urn:pulumi:") for urn in by_urn}
    return ProviderView(by_urn, errors, stacks.pop() if len(stacks) == 1 else None)


def run_refresh(stack: str) -> str:
    """The digest from the Pulumi CLI. The CLI exits non-zero when a provider failed to
    read; its digest still names which, so a digest on stdout is used whatever the exit."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise RefreshError("--refresh needs the `pulumi` CLI on PATH (or give --refresh-json)")
    result = subprocess.run(  # noqa: S603 (fixed argv)
        [pulumi, *REFRESH_COMMAND, "--stack", stack],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if not result.stdout.strip():
        raise RefreshError(f"pulumi refresh failed: {result.stderr.strip()}")
    return result.stdout


_PATH_TOKEN = re.compile(r'\["((?:[^"\\]|\\.)*)"\]|\[(\d+|\*)\]|\.?([^.\[\]]+)')


def parse_path(path: str) -> list[str | int]:
    """A Pulumi property path (``a.b[0]["c.d"]``) as its keys and indices."""
    parts: list[str | int] = []
    for quoted, index, name in _PATH_TOKEN.findall(path):
        if quoted:
            parts.append(json.loads(f'"{quoted}"'))
        elif index:
            parts.append(int(index) if index.isdigit() else index)
        else:
            parts.append(name)
    return parts


def value_at(properties: dict[str, Any], path: str) -> Any:
    """The value at ``path``; None where there is none (an added or removed property)."""
    value: Any = properties
    for part in parse_path(path):
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _properties(state: Any) -> dict[str, Any]:
    if not isinstance(state, dict):
        return {}
    return {**(state.get("inputs") or {}), **(state.get("outputs") or {})}


def step_diffs(step: dict[str, Any]) -> list[Diff]:
    """An ``update`` step's attributes, each with its value in the state and live."""
    old, new = _properties(step.get("oldState")), _properties(step.get("newState"))
    paths = list(step.get("detailedDiff") or {}) or list(step.get("diffReasons") or [])
    return [Diff(path, value_at(old, path), value_at(new, path)) for path in sorted(paths)]


def _ignored(path: str, ignore_changes: Iterable[str]) -> bool:
    parts = parse_path(path)
    for rule in ignore_changes:
        prefix = parse_path(rule)
        if parts[: len(prefix)] == prefix:
            return True
    return False


def _provider_diffs(resource: StateResource, step: dict[str, Any], state: StackState) -> list[Diff]:
    """The diffs that are drift: what the program ignores (``ignoreChanges``) is not,
    unless the type's refinement keeps it (an autoscaled ``desiredCount`` outside the
    scalable target's range is drift, as in the boto3 scan)."""
    diffs = step_diffs(step)
    refine = REFINE.get(resource.type)
    refined = refine(resource, diffs, state) if refine else diffs
    return [
        d for d in refined if d not in diffs or not _ignored(d.attribute, resource.ignore_changes)
    ]


def _merge(finding: Finding, step: dict[str, Any], diffs: list[Diff], errors: list[str]) -> Finding:
    if errors:
        return _with_errors(finding, errors)
    not_checked = finding.status == "unknown" and (finding.error or "").startswith(NOT_CHECKED)
    if finding.status in ("unknown", "missing") and not not_checked:
        return finding  # a boto3 fault, or gone as boto3 reads it: that stands
    if step["op"] == "delete":
        return replace(finding, status="missing", diffs=[], error=None, compared=True)
    named = {d.attribute for d in finding.diffs}
    merged = finding.diffs + [d for d in diffs if d.attribute not in named]
    return replace(
        finding, status="changed" if merged else "ok", diffs=merged, error=None, compared=True
    )


def fold(findings: list[Finding], view: ProviderView, state: StackState) -> list[Finding]:
    """The scan's findings with the provider's view of each resource folded in.

    - A resource the provider reads differently is ``changed`` on those attributes
      (with the boto3 scan's own diffs kept); one it finds gone is ``missing``.
    - A type no boto3 handler reads, or reads for presence only, becomes compared.
    - A provider error on a resource makes it ``unknown``; one on the whole run adds an
      ``unknown`` finding. A resource the refresh left out stays as the scan found it.
    - A boto3 fault (throttling, a non-AWS answer) stays ``unknown``: the fast path
      must itself be trusted.
    """
    if view.stack is not None and state.stack is not None and view.stack != state.stack:
        raise RefreshError(
            f"the refresh output is stack {view.stack!r}'s, the state {state.stack!r}'s: "
            "refresh the stack you scan"
        )
    resources = {r.urn: r for r in state.resources}
    folded: list[Finding] = []
    seen: set[str] = set()
    for finding in findings:
        urn = finding.urn
        if urn is None or urn not in resources or urn not in view.steps:
            folded.append(_with_errors(finding, view.errors.get(urn)) if urn else finding)
            continue
        seen.add(urn)
        step = view.steps[urn]
        diffs = _provider_diffs(resources[urn], step, state) if step["op"] == "update" else []
        folded.append(_merge(finding, step, diffs, view.errors.get(urn, [])))
    for urn, step in view.steps.items():
        if urn in seen or urn not in resources:
            continue
        resource = resources[urn]
        base = Finding("ok", resource.type, resource.id, urn=urn, region=state.regions.get(urn))
        diffs = _provider_diffs(resource, step, state) if step["op"] == "update" else []
        folded.append(_merge(base, step, diffs, view.errors.get(urn, [])))
    if run_errors := view.errors.get(None):
        folded.append(
            Finding(
                "unknown",
                "pulumi:refresh",
                "refresh",
                error=_provider_error(run_errors),
            )
        )
    return folded


def _provider_error(errors: list[str]) -> str:
    return "provider: " + "; ".join(errors)


def _with_errors(finding: Finding, errors: list[str] | None) -> Finding:
    """``finding`` as ``unknown`` when the provider reported errors reading it."""
    if not errors:
        return finding
    return replace(finding, status="unknown", error=_provider_error(errors))
