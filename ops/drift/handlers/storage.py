"""S3 buckets (the log buckets, the fleet's backup bucket) and their settings.
``ListBuckets`` names them all in one call; each setting has its own read per bucket
(S3 has no batch read), and a setting removed answers with its own "no such
configuration" code: ``missing``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ops.drift.aws import Compare, Fetch, Live, Reader, absent_on, as_policy, by, handler
from ops.drift.model import Diff
from ops.drift.state import StateResource

_BUCKET = "aws:s3/bucket:Bucket"
_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
_OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
_PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
_OBJECT_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)


def _bucket_of(resource: StateResource) -> str:
    return str(resource.get("bucket") or resource.id)


@handler(_BUCKET, global_region="us-east-1", live_id=_bucket_of)(
    lambda r, region, _: by("Name", r.items(_BUCKET, "s3", region, "list_buckets", "Buckets"))
)
def compare_bucket(state: StateResource, live: Live) -> list[Diff]:
    # Where it lives: a bucket of the same name elsewhere is not this one.
    return Compare()(
        "region", state.get("region") or state.get("bucketRegion"), live.get("BucketRegion")
    ).diffs


def _per_bucket(type_: str, operation: str, missing: Sequence[str]) -> Fetch:
    def fetch(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
        found: dict[str, Live] = {}
        for bucket in sorted({_bucket_of(x) for x in resources}):
            answer = absent_on(
                ["NoSuchBucket", *missing],
                lambda bucket=bucket: r.call(type_, "s3", region, operation, Bucket=bucket),
            )
            if answer is not None:
                found[bucket] = answer
        return found

    return fetch


def _register(type_: str, operation: str, missing: Sequence[str]) -> Callable[[Callable], Any]:
    return handler(type_, live_id=_bucket_of)(_per_bucket(type_, operation, missing))


_RULE_IN_AWS = (
    ("ID",),
    ("Status",),
    ("Expiration", "Days"),
    ("NoncurrentVersionExpiration", "NoncurrentDays"),
    ("AbortIncompleteMultipartUpload", "DaysAfterInitiation"),
)
_RULE_IN_STATE = (
    ("id",),
    ("status",),
    ("expiration", "days"),
    ("noncurrentVersionExpiration", "noncurrentDays"),
    ("abortIncompleteMultipartUpload", "daysAfterInitiation"),
)
"""What a lifecycle rule is compared on, where AWS and the state keep it."""


@_register(_LIFECYCLE, "get_bucket_lifecycle_configuration", ["NoSuchLifecycleConfiguration"])
def compare_lifecycle(state: StateResource, live: Live) -> list[Diff]:
    """Each rule's id, status and what it expires: current versions (the log buckets),
    noncurrent versions and incomplete uploads (the backup bucket)."""

    def rules(items: Any, paths: Sequence[tuple[str, ...]]) -> list[tuple[str, ...]]:
        found = []
        for rule in items or []:
            shape = []
            for path in paths:
                value: Any = rule
                for key in path:
                    value = (value or {}).get(key)
                shape.append(str(value))
            found.append(tuple(shape))
        return sorted(found)

    expected = state.get("rules")
    return Compare()(
        "rules",
        None if expected is None else rules(expected, _RULE_IN_STATE),
        rules(live.get("Rules"), _RULE_IN_AWS),
    ).diffs


@_register(_OWNERSHIP, "get_bucket_ownership_controls", ["OwnershipControlsNotFoundError"])
def compare_ownership(state: StateResource, live: Live) -> list[Diff]:
    rule = state.get("rule") or {}
    live_rules = (live.get("OwnershipControls") or {}).get("Rules") or [{}]
    return Compare()(
        "rule.objectOwnership",
        rule.get("objectOwnership") if isinstance(rule, dict) else None,
        live_rules[0].get("ObjectOwnership"),
    ).diffs


@_register(_POLICY, "get_bucket_policy", ["NoSuchBucketPolicy"])
def compare_bucket_policy(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("policy", state.get("policy"), live.get("Policy"), as_policy).diffs


PUBLIC_ACCESS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


@_register(_PUBLIC_ACCESS, "get_public_access_block", ["NoSuchPublicAccessBlockConfiguration"])
def compare_public_access(state: StateResource, live: Live) -> list[Diff]:
    configuration = live.get("PublicAccessBlockConfiguration") or {}
    compare = Compare()
    for key in PUBLIC_ACCESS:
        compare(key, state.get(key), configuration.get(key[0].upper() + key[1:]))
    return compare.diffs


@_register(
    _ENCRYPTION,
    "get_bucket_encryption",
    ["ServerSideEncryptionConfigurationNotFoundError"],
)
def compare_encryption(state: StateResource, live: Live) -> list[Diff]:
    def algorithms(items: Any, aws_shape: bool) -> list[str]:
        found = []
        for rule in items or []:
            default = (
                rule.get("ApplyServerSideEncryptionByDefault")
                if aws_shape
                else rule.get("applyServerSideEncryptionByDefault")
            ) or {}
            found.append(str(default.get("SSEAlgorithm" if aws_shape else "sseAlgorithm")))
        return sorted(found)

    expected = state.get("rules")
    return Compare()(
        "rules.sseAlgorithm",
        None if expected is None else algorithms(expected, aws_shape=False),
        algorithms(
            (live.get("ServerSideEncryptionConfiguration") or {}).get("Rules"), aws_shape=True
        ),
    ).diffs


def _fetch_versioning(
    r: Reader, region: str, resources: Sequence[StateResource]
) -> dict[str, Live]:
    # A bucket whose versioning was never set answers without a Status: nothing there.
    # (Versioning once enabled can only be suspended, which is a Status: changed.)
    answers = _per_bucket(_VERSIONING, "get_bucket_versioning", [])(r, region, resources)
    return {bucket: answer for bucket, answer in answers.items() if answer.get("Status")}


@handler(_VERSIONING, live_id=_bucket_of)(_fetch_versioning)
def compare_versioning(state: StateResource, live: Live) -> list[Diff]:
    configuration = state.get("versioningConfiguration") or {}
    return Compare()(
        "versioningConfiguration.status", configuration.get("status"), live.get("Status")
    ).diffs


@_register(_OBJECT_LOCK, "get_object_lock_configuration", ["ObjectLockConfigurationNotFoundError"])
def compare_object_lock(state: StateResource, live: Live) -> list[Diff]:
    """The default retention every new backup object gets: a shorter one, or none, is
    how backups become erasable."""
    configuration = live.get("ObjectLockConfiguration") or {}
    retention = (configuration.get("Rule") or {}).get("DefaultRetention") or {}
    expected = (state.get("rule") or {}).get("defaultRetention") or {}
    return (
        Compare()(
            "objectLockEnabled",
            state.get("objectLockEnabled"),
            configuration.get("ObjectLockEnabled"),
        )("rule.defaultRetention.mode", expected.get("mode"), retention.get("Mode"))(
            "rule.defaultRetention.days", expected.get("days"), retention.get("Days")
        )("rule.defaultRetention.years", expected.get("years"), retention.get("Years"))
    ).diffs
