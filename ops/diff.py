"""``python -m ops diff BASE.json HEAD.json``: what a change does to a stack, resource by
resource, from two ``ops plan --json`` documents. Needs no cloud credentials, so it works
on pull requests from forks.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.runtime import SECRET_PLACEHOLDER

COMMENT_LIMIT = 65_536
"""GitHub's limit on a comment body, in characters."""


@dataclass(frozen=True)
class Change:
    """One input that differs; secrets show as ``[secret]``."""

    path: str
    before: Any
    after: Any


@dataclass
class ResourceDiff:
    urn: str
    type: str
    name: str
    action: str
    """``add``, ``remove``, ``replace`` (the type changed) or ``update``."""
    changes: list[Change] = field(default_factory=list)
    previous_type: str | None = None


@dataclass
class PlanDiff:
    stack: str
    resources: list[ResourceDiff]
    outputs: list[Change]

    def counts(self) -> Counter[str]:
        return Counter(r.action for r in self.resources)


def _walk(before: Any, after: Any, path: str) -> Iterator[Change]:
    if before == after:
        return
    if SECRET_PLACEHOLDER in (before, after):
        yield Change(
            path or "(value)",
            SECRET_PLACEHOLDER if before is not None else None,
            SECRET_PLACEHOLDER,
        )
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            yield from _walk(before.get(key), after.get(key), f"{path}.{key}" if path else key)
        return
    if isinstance(before, str) and isinstance(after, str):
        # JSON documents in strings (policies, container definitions) diff as data.
        try:
            decoded = json.loads(before), json.loads(after)
        except json.JSONDecodeError:
            decoded = None
        if decoded is not None and all(isinstance(d, dict | list) for d in decoded):
            yield from _walk(decoded[0], decoded[1], path)
            return
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            yield from _walk(old, new, f"{path}[{index}]")
        return
    yield Change(path or "(value)", before, after)


class PlanFileError(ValueError):
    """A file that is not an ``ops plan --json`` document, or two plans that do not
    belong together; the message says what it is and what to do."""


_RESOURCE_KEYS = ("urn", "type", "name", "parent", "inputs")


def load_plan(path: str) -> dict[str, Any]:
    """An ``ops plan STACK --json`` document from ``path``, checked, or PlanFileError."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise PlanFileError(f"{path}: cannot be read ({error.strerror})") from None
    make_one = "make plans with `python -m ops plan STACK --json`"
    try:
        document = json.loads(text)
    except ValueError:
        raise PlanFileError(f"{path}: not JSON (a text plan?); {make_one}") from None
    if isinstance(document, dict) and "deployment" in document:
        raise PlanFileError(
            f"{path}: a `pulumi stack export` (a stack's state), not a plan; {make_one}"
        )
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        kind = type(document).__name__ if not isinstance(document, dict) else "object"
        raise PlanFileError(
            f"{path}: a JSON {kind} without a `resources` list, not a plan; {make_one}"
        )
    if not isinstance(document.get("stack"), str):
        raise PlanFileError(f"{path}: the plan names no `stack`; {make_one}")
    for index, resource in enumerate(document["resources"]):
        missing = [k for k in _RESOURCE_KEYS if not isinstance(resource, dict) or k not in resource]
        if missing:
            raise PlanFileError(
                f"{path}: resources[{index}] lacks {', '.join(missing)}; {make_one}"
            )
    return document


def check_same_stack(base: dict[str, Any], head: dict[str, Any]) -> None:
    if base["stack"] != head["stack"]:
        raise PlanFileError(
            f"the plans are of different stacks ({base['stack']!r} and {head['stack']!r}); "
            "compare a stack with itself, or pass --allow-stack-mismatch"
        )


def diff_plans(base: dict[str, Any], head: dict[str, Any]) -> PlanDiff:
    """Resource-level differences between two plan documents of one stack."""
    old = {r["urn"]: r for r in base["resources"]}
    new = {r["urn"]: r for r in head["resources"]}
    resources: list[ResourceDiff] = []
    added = [new[u] for u in sorted(set(new) - set(old))]
    removed = {(r["parent"], r["name"]): r for r in (old[u] for u in sorted(set(old) - set(new)))}
    for resource in added:
        previous = removed.pop((resource["parent"], resource["name"]), None)
        if previous is not None:
            resources.append(
                ResourceDiff(
                    resource["urn"],
                    resource["type"],
                    resource["name"],
                    "replace",
                    previous_type=previous["type"],
                )
            )
        else:
            resources.append(
                ResourceDiff(resource["urn"], resource["type"], resource["name"], "add")
            )
    resources += [ResourceDiff(r["urn"], r["type"], r["name"], "remove") for r in removed.values()]
    for urn in sorted(set(old) & set(new)):
        before, after = old[urn], new[urn]
        changes = list(_walk(before["inputs"], after["inputs"], ""))
        if before.get("protect") != after.get("protect"):
            changes.append(Change("(protect)", before.get("protect"), after.get("protect")))
        changes += _walk(before.get("options", {}), after.get("options", {}), "(options)")
        if changes:
            resources.append(ResourceDiff(urn, after["type"], after["name"], "update", changes))
    outputs = list(_walk(base.get("outputs", {}), head.get("outputs", {}), ""))
    order = {"replace": 0, "remove": 1, "add": 2, "update": 3}
    resources.sort(key=lambda r: (order[r.action], r.type, r.name))
    return PlanDiff(head.get("stack", base.get("stack", "")), resources, outputs)


def _value(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


SYMBOLS = {"add": "+", "remove": "-", "replace": "+-", "update": "~"}


def _summary_rows(diff: PlanDiff) -> list[tuple[str, Counter[str]]]:
    per_type: dict[str, Counter[str]] = {}
    for r in diff.resources:
        per_type.setdefault(r.type, Counter())[r.action] += 1
    return sorted(per_type.items())


def render_text(diff: PlanDiff) -> str:
    counts = diff.counts()
    lines = [
        f"Stack {diff.stack}: {counts['add']} to add, {counts['update']} to update, "
        f"{counts['replace']} to replace, {counts['remove']} to remove"
    ]
    for r in diff.resources:
        previous = f" (was {r.previous_type})" if r.previous_type else ""
        lines.append(f"  {SYMBOLS[r.action]:<2} {r.type}  {r.name}{previous}")
        lines += [f"       {c.path}: {_value(c.before)} -> {_value(c.after)}" for c in r.changes]
    if diff.outputs:
        lines.append("  outputs:")
        lines += [f"       {c.path}: {_value(c.before)} -> {_value(c.after)}" for c in diff.outputs]
    return "\n".join(lines) + "\n"


def render_markdown(diff: PlanDiff, limit: int = COMMENT_LIMIT) -> str:
    """A PR comment: summary per type, then each resource; trimmed under ``limit``
    characters with a note of what was cut."""
    counts = diff.counts()
    head = [
        f"### `ops plan` diff for stack `{diff.stack}`",
        "",
        f"**{counts['add']}** to add · **{counts['update']}** to update · "
        f"**{counts['replace']}** to replace · **{counts['remove']}** to remove",
        "",
    ]
    if not diff.resources and not diff.outputs:
        return "\n".join([*head, "No changes."]) + "\n"
    head += ["| type | add | update | replace | remove |", "|---|---|---|---|---|"]
    head += [
        f"| `{t}` | {c['add']} | {c['update']} | {c['replace']} | {c['remove']} |"
        for t, c in _summary_rows(diff)
    ]
    blocks = []
    for r in diff.resources:
        previous = f" (was `{r.previous_type}`)" if r.previous_type else ""
        summary = f"<code>{SYMBOLS[r.action]}</code> <code>{r.type}</code> {r.name}{previous}"
        body = [f"<details><summary>{summary}</summary>", ""]
        if r.changes:
            body += ["| input | before | after |", "|---|---|---|"]
            body += [
                f"| `{c.path}` | `{_value(c.before)}` | `{_value(c.after)}` |" for c in r.changes
            ]
        body += ["", "</details>"]
        blocks.append("\n".join(body))
    if diff.outputs:
        outputs = ["**Outputs**", "", "| output | before | after |", "|---|---|---|"]
        outputs += [
            f"| `{c.path}` | `{_value(c.before)}` | `{_value(c.after)}` |" for c in diff.outputs
        ]
        blocks.append("\n".join(outputs))
    text = "\n".join(head) + "\n\n"
    for index, block in enumerate(blocks):
        note = (
            f"\n_… {len(blocks) - index} more entries not shown: the comment would exceed "
            f"GitHub's {limit:,}-character limit. Run `python -m ops diff` locally for all._\n"
        )
        if len(text) + len(block) + 2 + len(note) > limit:
            return text + note
        text += block + "\n\n"
    return text
