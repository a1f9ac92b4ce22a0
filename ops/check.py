"""``python -m ops check STACK``: the policy pack's rules over the offline plan."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ops.runtime import Plan
from policies.rules import RULES, Options, Subject, Violation, evaluate


def subjects_of(plan: Plan) -> list[Subject]:
    """The plan's resources as the policy pack sees them (secrets in clear: rules may
    need them, e.g. the host key inside a secret SSH connection; nothing is printed)."""
    return [
        Subject(
            r.type,
            r.revealed,
            r.urn,
            r.parent,
            Options(
                dependencies=r.dependencies,
                ignore_changes=r.ignore_changes,
                replace_on_changes=r.replace_on_changes,
                delete_before_replace=r.delete_before_replace,
                timeouts=r.custom_timeouts,
                protect=r.protect,
            ),
        )
        for r in plan.resources
    ]


@dataclass(frozen=True)
class CheckResult:
    violations: list[Violation]

    @property
    def failed_rules(self) -> set[str]:
        return {v.rule for v in self.violations if v.enforcement == "mandatory"}

    @property
    def advisory_rules(self) -> set[str]:
        return {v.rule for v in self.violations if v.enforcement == "advisory"}

    @property
    def passed_rules(self) -> int:
        return len(RULES) - len(self.failed_rules | self.advisory_rules)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed_rules else 0


def check_plan(plan: Plan) -> CheckResult:
    return CheckResult(evaluate(subjects_of(plan)))


def render(stack: str, result: CheckResult) -> str:
    lines = [
        f"{v.enforcement.upper():<9} {v.control:<14} {v.rule}: {v.urn}\n          {v.message}"
        for v in sorted(
            result.violations, key=lambda v: (v.enforcement != "mandatory", v.control, v.urn)
        )
    ]
    counts = Counter(v.enforcement for v in result.violations)
    lines.append(
        f"stack {stack}: {len(RULES)} rules: {result.passed_rules} passed, "
        f"{len(result.failed_rules)} failed (mandatory, {counts['mandatory']} violations), "
        f"{len(result.advisory_rules)} advisory ({counts['advisory']} findings)"
    )
    return "\n".join(lines)
