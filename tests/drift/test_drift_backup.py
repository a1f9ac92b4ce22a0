"""Drift of the vps stack's AWS part, built in moto: the backup bucket (versioning,
object lock, lifecycle, policy, public access, encryption, ownership) in its own region,
and the per-host IAM users with their inline policies and access keys.

The table tests of tests/drift/test_drift_table.py run here too (each compared
attribute changed in the state is named; each type deleted is ``missing``), and every
comparison the state cannot change has a live scenario, an operator's change in moto.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ops.drift.aws import NOT_CHECKED
from tests.drift.conftest import World, build_world
from tests.drift.test_drift_table import (
    STATE_PATHS,
    _compared,
    deletion_failures,
    live_change_report,
    live_registry,
    state_change_failures,
)

BUCKET_REGION = "us-west-2"
"""The committed vps config's fleet.backup.bucketRegion."""
IAM = "us-east-1"
_USER = "aws:iam/user:User"
_KEY = "aws:iam/accessKey:AccessKey"

PATHS = {
    **STATE_PATHS,
    ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "rules"): (
        "rules",
        0,
        "noncurrentVersionExpiration",
        "noncurrentDays",
    ),
    (_USER, "managedPolicyArns"): (),
    (_USER, "groups"): (),
}
"""The backup bucket's lifecycle expires noncurrent versions (the log buckets' expire
current ones); what nothing in the state holds is changed live only."""


@pytest.fixture(scope="module")
def world(moto_url: str) -> World:
    return build_world(moto_url, "vps")


def _first(world: World, type_: str) -> dict[str, Any]:
    return next(r for r in world.checkpoint["deployment"]["resources"] if r["type"] == type_)


def test_a_clean_deployment_is_ok_and_every_aws_type_is_compared(world: World) -> None:
    report = world.scan()
    aws = [f for f in report.findings if f.type.startswith("aws:")]
    assert {f.type for f in aws} == {
        r["type"] for r in world.checkpoint["deployment"]["resources"] if r["type"][:4] == "aws:"
    }
    assert [(f.type, f.error) for f in aws if f.status != "ok"] == []
    assert not any((f.error or "").startswith(NOT_CHECKED) for f in report.findings)


def test_each_compared_attribute_changed_in_the_state_is_named(world: World) -> None:
    failures, count = state_change_failures(world, PATHS)
    assert failures == [], "\n".join(map(str, failures))
    assert count >= 15


def test_every_type_deleted_is_missing(world: World) -> None:
    assert deletion_failures(world) == []


# --- live changes ---------------------------------------------------------------------

LIVE, live = live_registry()


def _bucket(world: World) -> str:
    return str(_first(world, "aws:s3/bucket:Bucket")["id"])


@live("aws:s3/bucketVersioning:BucketVersioning", "versioningConfiguration.status")
def _versioning_suspended(world: World) -> Callable[[], None]:
    s3, bucket = world.clients("s3", BUCKET_REGION), _bucket(world)

    def status(value: str) -> None:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": value})

    status("Suspended")
    return lambda: status("Enabled")


@live(
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    "rule.defaultRetention.days",
)
def _retention_shortened(world: World) -> Callable[[], None]:
    s3, bucket = world.clients("s3", BUCKET_REGION), _bucket(world)
    before = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    rule = {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}
    s3.put_object_lock_configuration(
        Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": rule}
    )
    return lambda: s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=before)


@live("aws:iam/userPolicy:UserPolicy", "policy")
def _policy_widened(world: World) -> Callable[[], None]:
    policy = _first(world, "aws:iam/userPolicy:UserPolicy")
    user, name = policy["id"].split(":")
    iam = world.clients("iam", IAM)
    everything = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    iam.put_user_policy(
        UserName=user,
        PolicyName=name,
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [everything]}),
    )
    return lambda: iam.put_user_policy(
        UserName=user, PolicyName=name, PolicyDocument=policy["inputs"]["policy"]
    )


@live(_USER, "managedPolicyArns")
def _managed_policy_attached(world: World) -> Callable[[], None]:
    iam, user = world.clients("iam", IAM), _first(world, _USER)["id"]
    arn = iam.create_policy(
        PolicyName="ReadEverything",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            }
        ),
    )["Policy"]["Arn"]
    iam.attach_user_policy(UserName=user, PolicyArn=arn)

    def undo() -> None:
        iam.detach_user_policy(UserName=user, PolicyArn=arn)
        iam.delete_policy(PolicyArn=arn)

    return undo


@live(_USER, "groups")
def _added_to_a_group(world: World) -> Callable[[], None]:
    iam, user = world.clients("iam", IAM), _first(world, _USER)["id"]
    iam.create_group(GroupName="admins")
    iam.add_user_to_group(GroupName="admins", UserName=user)

    def undo() -> None:
        iam.remove_user_from_group(GroupName="admins", UserName=user)
        iam.delete_group(GroupName="admins")

    return undo


@live(_KEY, "status")
def _key_deactivated(world: World) -> Callable[[], None]:
    key = _first(world, _KEY)
    iam = world.clients("iam", IAM)

    def status(value: str) -> None:
        iam.update_access_key(UserName=key["inputs"]["user"], AccessKeyId=key["id"], Status=value)

    status("Inactive")
    return lambda: status("Active")


def test_every_comparison_the_state_cannot_change_has_a_live_scenario(world: World) -> None:
    backup_types = {_USER, _KEY, "aws:iam/userPolicy:UserPolicy"} | {
        t for t, _ in _compared(world) if "Versioning" in t or "ObjectLock" in t
    }
    without = {
        pair
        for pair in _compared(world)
        if pair[0] in backup_types and PATHS.get(pair, ("x",)) == () and pair not in LIVE
    }
    assert without == set()


@pytest.mark.parametrize("pair", sorted(LIVE), ids=lambda p: f"{p[0].rsplit(':', 1)[1]}.{p[1]}")
def test_a_live_change_is_named(world: World, pair: tuple[str, str]) -> None:
    report = live_change_report(world, LIVE[pair])
    changed = [(f.type, d.attribute) for f in report.of("changed") for d in f.diffs]
    assert changed == [pair]
    assert [f.status for f in report.findings if f.status != "ok"] == ["changed"]


def test_a_second_access_key_on_a_backup_user_is_unmanaged(world: World) -> None:
    """A key made by hand (or left over from a rotation) can write the host's backups
    and is in no state: the scan names it."""
    iam, user = world.clients("iam", IAM), _first(world, _USER)["id"]
    extra = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    try:
        report = world.scan()
    finally:
        iam.delete_access_key(UserName=user, AccessKeyId=extra)
    (finding,) = report.of("unmanaged")
    assert (finding.type, finding.id) == (_KEY, extra)
    assert user in str(finding.detail)


def test_a_user_tagged_for_the_stack_but_not_in_it_is_unmanaged(world: World) -> None:
    iam = world.clients("iam", IAM)
    tags = _first(world, _USER)
    user_tags = iam.list_user_tags(UserName=tags["id"])["Tags"]
    iam.create_user(UserName="trading-infra-backup-old", Tags=user_tags)
    try:
        report = world.scan()
    finally:
        iam.delete_user(UserName="trading-infra-backup-old")
    assert [(f.type, f.id) for f in report.of("unmanaged")] == [(_USER, "trading-infra-backup-old")]
