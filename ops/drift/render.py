"""Drift reports for people (a rich table), machines (JSON) and GitHub issues (markdown)."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ops.drift.model import Finding, Report

ORDER = {"unknown": 0, "missing": 1, "changed": 2, "unmanaged": 3, "ok": 4}


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _sorted(report: Report) -> list[Finding]:
    return sorted(report.findings, key=lambda f: (ORDER[f.status], f.type, f.key))


def summary(report: Report) -> dict[str, Any]:
    counts = {status: len(report.of(status)) for status in ORDER}  # type: ignore[arg-type]
    return {
        "stack": report.stack,
        "counts": counts,
        "coverage": round(report.coverage, 4),
        "present_only": len(report.present_only),
        "exit_code": report.exit_code(),
    }


def render_json(report: Report) -> str:
    return json.dumps(
        {
            **summary(report),
            "findings": [
                {
                    "status": f.status,
                    "type": f.type,
                    "id": f.id,
                    "urn": f.urn,
                    "region": f.region,
                    "diffs": [
                        {"attribute": d.attribute, "expected": d.expected, "actual": d.actual}
                        for d in f.diffs
                    ],
                    "error": f.error,
                    "detail": f.detail,
                }
                for f in _sorted(report)
            ],
        },
        indent=2,
        sort_keys=True,
        default=str,
    )


def _detail(finding: Finding) -> str:
    if finding.error or finding.detail:
        return str(finding.error or finding.detail)
    return "; ".join(
        f"{d.attribute}: {_value(d.expected)} -> {_value(d.actual)}" for d in finding.diffs
    )


def render_table(report: Report, width: int = 160) -> str:
    table = Table(title=f"Drift of stack {report.stack}", show_lines=False)
    for column in ("status", "type", "id", "detail"):
        table.add_column(column, overflow="fold")
    for finding in _sorted(report):
        if finding.status == "ok":
            continue
        table.add_row(finding.status, finding.type, finding.id, _detail(finding))
    counts = summary(report)["counts"]
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None)
    console.print(table)
    console.print(
        ", ".join(f"{count} {status}" for status, count in counts.items())
        + f"; coverage {report.coverage:.1%}"
        + f"; {len(report.present_only)} of the ok present only (attributes not compared)"
    )
    return buffer.getvalue()


def render_markdown(report: Report) -> str:
    counts = summary(report)["counts"]
    lines = [
        f"## Drift in stack `{report.stack}`",
        "",
        " · ".join(f"**{count}** {status}" for status, count in counts.items())
        + f" · coverage **{report.coverage:.1%}**",
        "",
    ]
    drifted = [f for f in _sorted(report) if f.status != "ok"]
    if not drifted:
        lines.append("No drift.")
    else:
        lines += ["| status | type | id | detail |", "|---|---|---|---|"]
        for finding in drifted:
            detail = _detail(finding).replace("|", "\\|")
            lines.append(f"| {finding.status} | `{finding.type}` | `{finding.id}` | {detail} |")
    if present := report.present_only:
        types = ", ".join(f"`{t}`" for t in sorted({f.type for f in present}))
        lines += ["", f"Present, attributes not compared ({len(present)}): {types}"]
    return "\n".join(lines) + "\n"
