"""S3 buckets (the log buckets) and their settings. ``ListBuckets`` names them all in
one call; each setting has its own read per bucket (S3 has no batch read), and a
setting removed answers with its own "no such configuration" code: ``missing``."""

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


@_register(_LIFECYCLE, "get_bucket_lifecycle_configuration", ["NoSuchLifecycleConfiguration"])
def compare_lifecycle(state: StateResource, live: Live) -> list[Diff]:
    def rules(items: Any, aws_shape: bool) -> list[tuple[str, str, int | None]]:
        found = []
        for rule in items or []:
            if aws_shape:
                expiration = (rule.get("Expiration") or {}).get("Days")
                found.append((str(rule.get("ID")), str(rule.get("Status")), expiration))
            else:
                expiration = (rule.get("expiration") or {}).get("days")
                found.append((str(rule.get("id")), str(rule.get("status")), expiration))
        return sorted(found, key=str)

    expected = state.get("rules")
    return Compare()(
        "rules",
        None if expected is None else rules(expected, aws_shape=False),
        rules(live.get("Rules"), aws_shape=True),
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
