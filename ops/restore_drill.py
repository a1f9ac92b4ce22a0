"""``python -m ops restore-drill vps --host NAME``: prove a host's backups restore.

Over SSH as the read-only drift user (host key pinned, through the jump host like
``ops drift``), the host's restore drill (``components/vps_files/restore_drill.sh``,
installed by the backup step; the drift user's sudo allows it, with no arguments)
restores the latest snapshot into a scratch directory with ``restic restore --verify``,
lists what it restored and runs ``restic check``. What the sections mean is decided
here:

- every file of the snapshot is restored, at its size;
- the restore verified and the repository check passed;
- the achieved RPO, the latest snapshot's age on the host's own clock, is within the
  stack's ``backupRpoMinutes``.

The restore time is reported (the RTO's largest term); exit 1 when anything fails.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from components.backup import RESTORE_DRILL
from ops.drift.state import StackState
from ops.drift.vps import HostExpectation, expectations
from stacks import outputs

DRILL_COMMAND = shlex.join(["sudo", "-n", RESTORE_DRILL])
DRILL_TIMEOUT_SECONDS = 3600
"""The RTO target: a drill still restoring after an hour has failed anyway."""


class Session(Protocol):
    """A command on the host: exit status, stdout, stderr (``SshRemote.execute``)."""

    def execute(self, command: str, timeout: float) -> tuple[int, str, str]: ...


class DrillError(Exception):
    """The drill could not run, or its report cannot be read."""


@dataclass
class DrillResult:
    host: str
    snapshot: str
    snapshot_time: str
    age_seconds: int
    """The achieved RPO: the host's clock minus the latest snapshot's time."""
    rpo_seconds: int
    files: int
    bytes: int
    restore_seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def sections(text: str) -> dict[str, list[str]]:
    """The drill's output, ``### name`` headed sections, by name."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("### "):
            current = found.setdefault(line[4:].strip(), [])
        elif current is not None:
            current.append(line)
    missing = {"now", "snapshot", "files", "restore", "restored", "check"} - set(found)
    if missing:
        raise DrillError(f"the drill's output lacks {', '.join(sorted(missing))}:\n{text[-2000:]}")
    return found


def _json_lines(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.strip().startswith("{")]


def evaluate(host: str, output: str, rpo_minutes: int) -> DrillResult:
    """Judge a drill's output against the snapshot it restored and the RPO target."""
    parts = sections(output)
    try:
        snapshots = json.loads("\n".join(parts["snapshot"]) or "[]")
        now = int(parts["now"][0])
        restore_status, restore_ms = (int(x) for x in parts["restore"][0].split())
        check_status = int(parts["check"][0])
        nodes = _json_lines(parts["files"])
    except (ValueError, IndexError, json.JSONDecodeError) as error:
        raise DrillError(f"the drill's output cannot be read: {error}") from None
    if not snapshots:
        raise DrillError(f"{host} has no snapshot to restore")
    latest = max(snapshots, key=lambda s: s["time"])
    taken = datetime.fromisoformat(latest["time"])
    expected = {
        n["path"]: int(n.get("size", 0))
        for n in nodes
        if n.get("struct_type") == "node" and n.get("type") == "file"
    }
    restored: dict[str, int] = {}
    for line in parts["restored"]:
        size, _, path = line.partition(" ")
        if path:
            restored[path] = int(size)
    result = DrillResult(
        host=host,
        snapshot=str(latest.get("short_id") or latest["id"][:8]),
        snapshot_time=taken.isoformat(),
        age_seconds=max(0, now - int(taken.timestamp())),
        rpo_seconds=rpo_minutes * 60,
        files=len(expected),
        bytes=sum(expected.values()),
        restore_seconds=restore_ms / 1000,
    )
    if not expected:
        result.problems.append("the snapshot holds no file")
    missing = sorted(set(expected) - set(restored))
    if missing:
        result.problems.append(f"{len(missing)} file(s) not restored, e.g. {missing[0]}")
    resized = sorted(p for p in expected if p in restored and restored[p] != expected[p])
    if resized:
        path = resized[0]
        result.problems.append(
            f"{len(resized)} file(s) restored at another size, e.g. {path} "
            f"({restored[path]} bytes, the snapshot says {expected[path]})"
        )
    if restore_status != 0:
        result.problems.append(f"restic restore --verify failed (exit {restore_status})")
    if check_status != 0:
        result.problems.append(f"restic check failed (exit {check_status})")
    if result.age_seconds > result.rpo_seconds:
        result.problems.append(
            f"RPO missed: the latest snapshot is {_minutes(result.age_seconds)} old, "
            f"the target is {rpo_minutes} min"
        )
    return result


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def host_of(state: StackState, name: str) -> HostExpectation:
    hosts = {host.name: host for host in expectations(state)}
    if name not in hosts:
        raise DrillError(
            f"--host {name!r} is not in the stack's fleetHosts: one of {', '.join(sorted(hosts))}"
        )
    return hosts[name]


def rpo_of(state: StackState) -> int:
    value = state.outputs.get(outputs.BACKUP_RPO_MINUTES)
    if not isinstance(value, int | float):
        raise DrillError(
            f"the state has no {outputs.BACKUP_RPO_MINUTES} output (a stack without backups, "
            "or deployed before them): pass --rpo-minutes"
        )
    return int(value)


def run_drill(host: HostExpectation, session: Session, rpo_minutes: int) -> DrillResult:
    status, output, errors = session.execute(DRILL_COMMAND, DRILL_TIMEOUT_SECONDS)
    if status != 0:
        raise DrillError(f"the drill on {host.name} exited {status}:\n{errors[-2000:]}")
    return evaluate(host.name, output, rpo_minutes)


def render(result: DrillResult, markdown: bool = False) -> str:
    verdict = "passed" if result.passed else "FAILED"
    rows = [
        ("snapshot", f"{result.snapshot} at {result.snapshot_time}"),
        (
            "achieved RPO",
            f"{_minutes(result.age_seconds)} (target {_minutes(result.rpo_seconds)})",
        ),
        ("restored", f"{result.files} files, {result.bytes} bytes"),
        ("restore time", f"{result.restore_seconds:.1f} s"),
    ]
    if markdown:
        lines = [f"## Restore drill of {result.host}: {verdict}", "", "| | |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in rows]
        lines += ["", *(f"- {problem}" for problem in result.problems)]
    else:
        lines = [f"restore drill of {result.host}: {verdict}"]
        lines += [f"  {name:<13} {value}" for name, value in rows]
        lines += [f"  problem: {problem}" for problem in result.problems]
    return "\n".join(lines).rstrip() + "\n"


def document(result: DrillResult) -> dict[str, Any]:
    """The result for machines (``--format json``)."""
    return {**asdict(result), "passed": result.passed}
