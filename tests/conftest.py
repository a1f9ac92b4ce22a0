"""Fixtures shared by test modules: one moto server per test process, on 127.0.0.1
(moto's servers in one process would share their backends anyway)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import moto.settings
import pytest
from moto.server import ThreadedMotoServer
from moto.wafv2.models import WAFV2Backend

from tests.test_backup import BUCKET, REGION, s3_client


def _cloudfront_logging_configurations(
    backend: Any, scope: str, **_: Any
) -> tuple[list[Any], None]:
    """moto 5.2's ListLoggingConfigurations looks for ``:global:`` in the ARN, but a
    CloudFront web ACL's ARN is ``arn:aws:wafv2:us-east-1:<account>:global/webacl/...``
    (https://docs.aws.amazon.com/waf/latest/APIReference/API_WebACL.html), so it
    never lists one: match the ARN as AWS writes it."""
    marker = ":global/" if scope == "CLOUDFRONT" else f":{backend.region_name}:"
    return [c for arn, c in backend.logging_configurations.items() if marker in arn], None


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # ACM issues a DNS-validated certificate at once (moto waits 60 s by default), as
    # a deployed stack's validated certificates are issued.
    moto.settings.ACM_VALIDATION_WAIT = 0
    WAFV2Backend.list_logging_configurations = _cloudfront_logging_configurations  # type: ignore[method-assign]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_endpoint(moto_url: str) -> str:
    """moto's S3 with the backup bucket as the stack makes it: versioned, object lock
    on by default (governance). Made again for each module that needs it when gone: the
    drift tests reset moto at the start of theirs."""
    s3 = s3_client(moto_url)
    if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(
            Bucket=BUCKET,
            CreateBucketConfiguration={"LocationConstraint": REGION},
            ObjectLockEnabledForBucket=True,
        )
        s3.put_object_lock_configuration(
            Bucket=BUCKET,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
            },
        )
    return moto_url
