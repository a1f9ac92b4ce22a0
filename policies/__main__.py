"""The trading-infra policy pack: ``pulumi preview --policy-pack policies``.

Every rule of ``rules.py`` becomes one stack validation policy with the rule's
enforcement level: mandatory rules fail the preview, advisory ones warn.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyPack,
    PolicyResource,
    StackValidationArgs,
    StackValidationPolicy,
)

# The pack runs from its own folder: load the rules next to it, not as a package.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rules import RULES, Options, Rule, Subject

LEVELS = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}


def options_of(resource: PolicyResource) -> Options:
    """What the engine tells the pack of a resource's options (no replaceOnChanges)."""
    timeouts = resource.opts.custom_timeouts
    return Options(
        dependencies=tuple(d.urn for d in resource.dependencies),
        ignore_changes=tuple(resource.opts.ignore_changes),
        replace_on_changes=None,
        delete_before_replace=bool(resource.opts.delete_before_replace),
        protect=bool(resource.opts.protect),
        timeouts={
            name: seconds
            for name, seconds in (
                ("create", timeouts.create_seconds),
                ("update", timeouts.update_seconds),
                ("delete", timeouts.delete_seconds),
            )
            if seconds
        },
    )


def validator(rule: Rule) -> Callable[[StackValidationArgs, Callable[..., None]], None]:
    def validate(args: StackValidationArgs, report_violation: Callable[..., None]) -> None:
        subjects = [
            Subject(
                type=r.resource_type,
                props=r.props,
                urn=r.urn,
                parent=r.parent.urn if r.parent is not None else None,
                options=options_of(r),
            )
            for r in args.resources
        ]
        for urn, message in rule.check(subjects):
            report_violation(f"[{rule.control}] {message}", urn)

    return validate


def policies() -> list[Policy]:
    return [
        StackValidationPolicy(
            name=rule.name,
            description=f"{rule.control}: {rule.description}",
            validate=validator(rule),
            enforcement_level=LEVELS[rule.enforcement],
        )
        for rule in RULES
    ]


if __name__ == "__main__":
    PolicyPack(name="trading-infra-baseline", policies=policies())
