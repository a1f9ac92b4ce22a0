"""One drift scan: the state, the live AWS resources and VPS hosts, the ignore rules."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

from ops.drift.aws import ClientFactory, Reader, default_client_factory, scan_aws
from ops.drift.ignore import Rule, apply_ignore
from ops.drift.model import Finding, Report
from ops.drift.refresh import fold, parse_refresh
from ops.drift.state import StackState, parse_state, require_stack

VpsScanner = Callable[[StackState], list[Finding]]


class ExportError(Exception):
    """``pulumi stack export`` could not be run."""


def export_state(stack: str) -> str:
    """The stack's state from the Pulumi CLI, when ``--state`` is not given."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise ExportError("no --state given and no `pulumi` on PATH to export it")
    result = subprocess.run(  # noqa: S603 (fixed argv)
        [pulumi, "stack", "export", "--stack", stack],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise ExportError(f"pulumi stack export failed: {result.stderr.strip()}")
    return result.stdout


def scan(
    stack: str,
    state_text: str,
    *,
    clients: ClientFactory | None = None,
    regions: Sequence[str] | None = None,
    vps: VpsScanner | None = None,
    ignore: Sequence[Rule] = (),
    refresh: str | None = None,
    progress: Callable[[str], AbstractContextManager[object]] = lambda _: nullcontext(),
) -> tuple[Report, Reader]:
    """Scan the stack; returns the report (ignore rules applied) and the reader with its
    call counts. ``refresh``: a ``pulumi refresh --preview-only --json`` digest to fold in
    (read before any AWS call, so a wrong file fails fast)."""
    state = parse_state(state_text, default_region=regions[0] if regions else None)
    view = parse_refresh(refresh) if refresh is not None else None
    require_stack(state, stack)
    reader = Reader(clients or default_client_factory())
    with progress(f"reading AWS for {len(state.resources)} resources"):
        findings = scan_aws(state, reader, regions)
    if vps is not None and any(r.type.startswith("command:remote:") for r in state.resources):
        with progress("reading the VPS hosts over SSH"):
            findings += vps(state)
    if view is not None:
        findings = fold(findings, view, state)
    report = Report(stack=stack, findings=findings)
    return apply_ignore(report, list(ignore)), reader
