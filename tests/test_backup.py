"""Fleet backups: the rendered backup script run for real (restic against moto's S3
server on 127.0.0.1, an object-locked bucket as the stack creates it), its systemd
units under ``systemd-analyze verify``, and the bucket and scoped users in the plan.

The services the script talks to are stand-ins on PATH (``docker`` for the volumes
and Redis, ``curl`` for QuestDB's HTTP endpoint); each logs what it was asked, so the
order (checkpoint, snapshot, release) is asserted on a real run. restic is the real one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3

from components import vps
from components.backup import (
    BACKUP_SCRIPT,
    BackupSettings,
    RetentionSettings,
    backup_env,
    backup_script_settings,
    backup_service,
    backup_timer,
    host_policy,
)
from components.compose import QUESTDB_HTTP_PORT
from ops.plan import render_json
from tests.support import committed_plan
from tests.test_vps import shellcheck, systemd_verify

REGION = "us-west-2"
BUCKET = "trading-infra-backups-test"
RESTIC = shutil.which("restic") or "/usr/bin/restic"

DOCKER_STUB = r"""#!/usr/bin/env bash
# Stand-in for the docker CLI: named volumes are directories under $VOLUMES, Redis's
# LASTSAVE is a counter that BGSAVE moves (writing a dump into its volume).
set -euo pipefail
echo "docker $*" >>"${EVENTS}"
case "$*" in
  "volume inspect --format {{ .Mountpoint }} "*) echo "${VOLUMES}/${*: -1}" ;;
  *"redis-cli LASTSAVE") cat "${VOLUMES}/lastsave" 2>/dev/null || echo 100 ;;
  *"redis-cli BGSAVE")
    echo $(($(cat "${VOLUMES}/lastsave" 2>/dev/null || echo 100) + 1)) >"${VOLUMES}/lastsave"
    date +%s%N >"${VOLUMES}/trading-infra_redis-data/dump.rdb"
    echo "Background saving started" ;;
  *) echo "unexpected: docker $*" >&2; exit 2 ;;
esac
"""
CURL_STUB = r"""#!/usr/bin/env bash
# Stand-in for curl against QuestDB's /exec: logs the query; fails it when asked to.
set -euo pipefail
query="${*: -2:1}"
echo "curl ${query#query=}" >>"${EVENTS}"
[[ "${query}" != "query=${FAIL_QUERY:-none}" ]] || exit 22
"""
RESTIC_WRAPPER = r"""#!/usr/bin/env bash
echo "restic $1" >>"${EVENTS}"
exec "${REAL_RESTIC}" "$@"
"""


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class Host:
    """One host's backup, run the way its service runs it (the env file's variables,
    the rendered script as root would run it), in a scratch directory."""

    def __init__(self, root: Path, endpoint: str, name: str, role: str, retention: dict) -> None:
        self.root, self.name = root, name
        self.volumes = root / "volumes"
        for volume in ("questdb-data", "redis-data"):
            (self.volumes / f"trading-infra_{volume}").mkdir(parents=True)
        self.bin = root / "bin"
        self.bin.mkdir()
        for tool, text in (
            ("docker", DOCKER_STUB),
            ("curl", CURL_STUB),
            ("restic", RESTIC_WRAPPER),
        ):
            (self.bin / tool).write_text(text)
            (self.bin / tool).chmod(0o755)
        self.events = root / "events.log"
        self.metrics = root / "state" / "backup.prom"
        settings = BackupSettings(
            bucket_region=REGION, retention=RetentionSettings.model_validate(retention)
        )
        values = backup_script_settings(
            name, role, settings, str(root / "trading-infra"), QUESTDB_HTTP_PORT
        )
        values["METRICS"] = str(self.metrics)
        values["LOCK"] = str(root / "backup.lock")
        self.script = root / "backup.sh"
        self.script.write_text(vps.with_settings("backup.sh", **values))
        self.script.chmod(0o755)
        env_file = backup_env(f"s3:{endpoint}/{BUCKET}/{name}", "testing", "testing", "pw")
        self.env = {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "HOME": str(root),
            "XDG_CACHE_HOME": str(root / "cache"),
            "AWS_DEFAULT_REGION": REGION,
            "EVENTS": str(self.events),
            "VOLUMES": str(self.volumes),
            "REAL_RESTIC": RESTIC,
            # EnvironmentFile= syntax: KEY="value" per line.
            **dict(line.split("=", 1) for line in env_file.splitlines()),
        }
        self.env = {k: v.strip('"') for k, v in self.env.items()}

    def run(self, **extra: str) -> subprocess.CompletedProcess[str]:
        self.events.write_text("")
        return subprocess.run(
            [str(self.script)],
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def restic(self, *args: str) -> str:
        result = subprocess.run(
            [RESTIC, *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def snapshots(self) -> list[dict]:
        return json.loads(self.restic("snapshots", "--json"))

    def metric(self, name: str) -> int:
        lines = self.metrics.read_text().splitlines()
        return int(next(line.split()[1] for line in lines if line.startswith(f"{name} ")))


KEEP_MANY = {"keepWithinHours": 24, "keepHourly": 48, "keepDaily": 30, "keepMonthly": 12}


def test_a_backup_is_consistent_restorable_byte_for_byte_and_sees_each_change(
    tmp_path: Path, s3_endpoint: str
) -> None:
    host = Host(tmp_path, s3_endpoint, "cdmx", "orchestrator", KEEP_MANY)
    table = host.volumes / "trading-infra_questdb-data" / "db" / "trades.d"
    table.parent.mkdir(parents=True)
    table.write_bytes(os.urandom(200_000))

    first = host.run()
    assert first.returncode == 0, first.stderr
    events = [
        line.split()[0] + " " + line.split()[1] for line in host.events.read_text().splitlines()
    ]
    # QuestDB's files are held from before the snapshot until after it; Redis has
    # written a fresh dump before it.
    assert events.index("curl CHECKPOINT") < events.index("restic backup")
    order = host.events.read_text()
    assert order.index("CHECKPOINT CREATE") < order.index("BGSAVE") < order.index("restic backup")
    assert order.index("restic backup") < order.index("CHECKPOINT RELEASE")
    assert host.metric("trading_infra_backup_last_run_success") == 1

    table.write_bytes(b"changed " + os.urandom(1000))
    second = host.run()
    assert second.returncode == 0, second.stderr
    snapshots = host.snapshots()
    assert len(snapshots) == 2
    assert all(s["hostname"] == "cdmx" and s["tags"] == ["trading-infra"] for s in snapshots)
    latest = subprocess.run(
        [RESTIC, "dump", "latest", str(table)], env=host.env, capture_output=True, timeout=60
    )
    assert latest.stdout == table.read_bytes()

    target = tmp_path / "restore"
    host.restic("restore", "latest", "--target", str(target))
    for volume in ("trading-infra_questdb-data", "trading-infra_redis-data"):
        source = host.volumes / volume
        restored = target / source.relative_to("/")
        for path in source.rglob("*"):
            if path.is_file():
                assert (restored / path.relative_to(source)).read_bytes() == path.read_bytes()
    host.restic("check", "--read-data")


def test_retention_forgets_what_the_policy_does_not_keep(tmp_path: Path, s3_endpoint: str) -> None:
    retention = {"keepWithinHours": 1, "keepHourly": 1, "keepDaily": 1, "keepMonthly": 3}
    host = Host(tmp_path, s3_endpoint, "chicago", "futures", retention)
    assert host.run().returncode == 0
    # Older snapshots, as months of five-minute backups leave them.
    data = str(host.volumes / "trading-infra_redis-data")
    for when in ("2020-01-01 10:00:00", "2020-01-01 10:30:00", "2020-03-05 10:00:00"):
        host.restic("backup", "--host", "chicago", "--tag", "trading-infra", "--time", when, data)
    result = host.run()
    assert result.returncode == 0, result.stderr
    kept = sorted(s["time"][:16] for s in host.snapshots())
    # The last hour's two runs (keepWithinHours), then the newest of each of the three
    # latest months with snapshots: this month's, March 2020's, January 2020's 10:30.
    assert kept[:2] == ["2020-01-01T10:30", "2020-03-05T10:00"]
    assert len(kept) == 4
    assert "curl" not in host.events.read_text()  # an execution host has no QuestDB


def test_a_failed_run_releases_the_checkpoint_and_says_so(tmp_path: Path, s3_endpoint: str) -> None:
    host = Host(tmp_path, s3_endpoint, "cdmx-fail", "orchestrator", KEEP_MANY)
    assert host.run().returncode == 0
    succeeded = host.metric("trading_infra_backup_last_success_timestamp_seconds")
    # The repository cannot be opened: the snapshot fails after the checkpoint.
    failed = host.run(RESTIC_PASSWORD="not-the-repository-password")
    assert failed.returncode != 0
    assert "CHECKPOINT RELEASE" in host.events.read_text()
    assert host.metric("trading_infra_backup_last_run_success") == 0
    assert host.metric("trading_infra_backup_last_success_timestamp_seconds") == succeeded
    # A checkpoint that cannot be taken is a failed run too, and nothing is released.
    refused = host.run(FAIL_QUERY="CHECKPOINT CREATE")
    assert refused.returncode != 0
    assert host.metric("trading_infra_backup_last_run_success") == 0


def test_the_rendered_script_and_install_step_pass_shellcheck() -> None:
    settings = BackupSettings(bucket_region=REGION)
    for role in ("orchestrator", "futures"):
        values = backup_script_settings("h", role, settings, vps.APP_DIR, QUESTDB_HTTP_PORT)
        result = shellcheck(vps.with_settings("backup.sh", **values))
        assert result.returncode == 0, result.stdout


def test_the_service_and_timer_are_what_systemd_understands(tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    script = tmp_path / BACKUP_SCRIPT.lstrip("/")
    service = backup_service().replace(BACKUP_SCRIPT, str(script))
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    (units / "trading-infra-backup.service").write_text(service)
    (units / "trading-infra-backup.timer").write_text(backup_timer(5))
    for unit in ("trading-infra-backup.service", "trading-infra-backup.timer"):
        result = systemd_verify(units, unit)
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert "OnUnitActiveSec=5min" in backup_timer(5).splitlines()


def test_the_bucket_is_locked_versioned_private_and_tls_only() -> None:
    plan = committed_plan("vps")
    bucket = plan.named("backups-bucket")
    assert bucket.inputs["objectLockEnabled"] is True
    assert bucket.protect
    lock = plan.named("backups-object-lock").inputs["rule"]["defaultRetention"]
    assert lock == {"mode": "GOVERNANCE", "days": 30}
    versioning = plan.named("backups-versioning").inputs["versioningConfiguration"]
    assert versioning["status"] == "Enabled"
    block = plan.named("backups-public-access").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy",
                                          "ignorePublicAcls", "restrictPublicBuckets"))  # fmt: skip
    (statement,) = json.loads(plan.named("backups-policy").inputs["policy"])["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    provider = plan.named("aws-us-west-2")
    assert bucket.provider is not None and provider.urn in bucket.provider


def test_each_host_may_touch_its_own_prefix_only_and_its_key_stays_secret() -> None:
    plan = committed_plan("vps")
    for host in ("cdmx", "chicago", "nj"):
        policy = json.loads(plan.named(f"backups-{host}-policy").inputs["policy"])
        listing, objects = policy["Statement"]
        assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{host}/", f"{host}/*"]}}
        assert objects["Resource"].endswith(f"/{host}/*")
        assert set(objects["Action"]) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
        step = plan.named(f"{host}-backup")
        assert step.inputs["stdin"] == "[secret]"
        assert any(d.endswith(f"{host}-health") for d in step.dependencies)
    assert "mock-secret-of" not in render_json(plan)


def test_the_policy_denies_other_prefixes() -> None:
    policy = json.loads(host_policy("arn:aws:s3:::b", "nj"))
    resources = [s["Resource"] for s in policy["Statement"]]
    assert resources == ["arn:aws:s3:::b", "arn:aws:s3:::b/nj/*"]
