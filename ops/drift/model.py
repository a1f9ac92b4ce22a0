"""Drift findings: one per resource (and one per unmanaged live resource)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "changed", "missing", "unmanaged", "unknown"]
DRIFT: frozenset[Status] = frozenset({"changed", "missing", "unmanaged"})


@dataclass(frozen=True)
class Diff:
    """One attribute whose live value differs from the state's."""

    attribute: str
    expected: Any
    actual: Any


@dataclass
class Finding:
    """What the scan found for one resource."""

    status: Status
    type: str
    id: str
    urn: str | None = None
    """None for unmanaged resources: they are not in the state."""
    region: str | None = None
    diffs: list[Diff] = field(default_factory=list)
    error: str | None = None
    """Why the resource is ``unknown``."""
    detail: str | None = None
    """What an ``unmanaged`` resource is."""
    compared: bool = True
    """False for an ``ok`` of a type checked for presence only."""

    @property
    def key(self) -> str:
        return self.urn or f"{self.type}::{self.id}"


@dataclass
class Report:
    """A whole scan."""

    stack: str
    findings: list[Finding]

    def of(self, status: Status) -> list[Finding]:
        return [f for f in self.findings if f.status == status]

    @property
    def present_only(self) -> list[Finding]:
        """Resources found live whose attributes no handler compares."""
        return [f for f in self.findings if f.status == "ok" and not f.compared]

    @property
    def managed(self) -> int:
        return sum(1 for f in self.findings if f.status != "unmanaged")

    @property
    def coverage(self) -> float:
        """managed / (managed + unmanaged): how much of what runs the state accounts for."""
        unmanaged = len(self.of("unmanaged"))
        total = self.managed + unmanaged
        return 1.0 if total == 0 else self.managed / total

    @property
    def drifted(self) -> bool:
        return any(f.status in DRIFT for f in self.findings)

    @property
    def errored(self) -> bool:
        return any(f.status == "unknown" for f in self.findings)

    def exit_code(self) -> int:
        """0 clean, 2 drift, 1 error (a scan that could not read or check everything,
        a type without handler included, is an error even when it also found drift: its
        ``ok`` cannot be trusted; the ignore file may accept what cannot be checked)."""
        if self.errored:
            return 1
        return 2 if self.drifted else 0
