"""Fixtures shared by test modules: one moto S3 server per test process (moto's servers
in one process share their backends: one fixture owns the backup bucket)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from tests.test_backup import BUCKET, REGION, s3_client


@pytest.fixture(scope="session")
def _s3_server() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_endpoint(_s3_server: str) -> str:
    """moto's S3 with the backup bucket as the stack makes it: versioned, object lock
    on by default (governance). Made again for each module that needs it when gone: the
    drift tests reset moto, which empties every server of the process."""
    s3 = s3_client(_s3_server)
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
    return _s3_server
