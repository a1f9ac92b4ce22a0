"""Fleet backups: restic on each host, every few minutes, to an object-locked S3 bucket
in a region away from the hosts.

- ``BackupSettings``: the schedule, the RPO target it must meet, retention, the bucket.
- ``BackupBucket``: the bucket (versioning, object lock in governance mode, public
  access blocked, TLS only, SSE-S3, lifecycle) and, per host, an IAM user whose only
  rights are its own prefix, with an access key.
- ``backup_files``: what a host runs: the backup script, its systemd service and timer.

Why IAM users with access keys rather than IAM Roles Anywhere: the hosts sit outside
AWS, and Roles Anywhere needs a certificate authority, a certificate per host and its
renewal, and the signing helper on every host. An access key scoped to one prefix of
one bucket, delivered as a Pulumi secret into a root-only file, is smaller, and a
leaked key can at worst write to (never erase: object lock) its own host's backups.
Rotate it by replacing the ``AccessKey`` resource (``pulumi up --replace``).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Annotated

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from components.compose import METRICS_DIR
from components.log_bucket import private_bucket
from components.settings import Settings
from components.tagging import component_tags

AWS_REGION = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
BACKUP_ENV = "/etc/trading-infra/backup.env"
"""The host's restic settings and S3 credentials (root-only, 0600)."""
BACKUP_SCRIPT = "/usr/local/lib/trading-infra/backup.sh"
BACKUP_UNIT = "trading-infra-backup"
"""The systemd service and timer (``<unit>.service``, ``<unit>.timer``)."""
BACKUP_METRICS = f"{METRICS_DIR}/backup.prom"
"""The last run's outcome in Prometheus' text format: what the backup alerts read."""
BACKUP_LOCK = "/var/lib/trading-infra/backup.lock"
"""flock(1)'s file: a backup run and a restore drill never use the repository at once."""
RESTORE_DRILL = "/usr/local/lib/trading-infra/restore-drill.sh"
RESTORE_DRILL_SUDOERS = "/etc/sudoers.d/trading-infra-restore-drill"
"""The drift user may run ``RESTORE_DRILL`` as root, with no arguments, and nothing
else beyond its reads."""
RESTORE_SCRATCH = "/var/lib/trading-infra"
"""Where the drill restores (a fresh directory, removed afterwards): the data's own
filesystem, which needs room for one more copy of the volumes while the drill runs."""


class RetentionSettings(Settings):
    """``trading-infra:fleet.backup.retention``: snapshots kept by ``restic forget``."""

    keep_within_hours: Annotated[int, Field(ge=1)] = 24
    """Every snapshot of this many hours before the latest: point-in-time restores at
    the backup interval's granularity. Default 24."""
    keep_hourly: Annotated[int, Field(ge=1)] = 48
    """The last snapshot of each of this many hours. Default 48."""
    keep_daily: Annotated[int, Field(ge=1)] = 30
    """The last snapshot of each of this many days. Default 30."""
    keep_monthly: Annotated[int, Field(ge=1)] = 12
    """The last snapshot of each of this many months. Default 12."""


class BackupSettings(Settings):
    """``trading-infra:fleet.backup``: restic backups of each host's stateful data."""

    bucket_region: Annotated[str, Field(pattern=AWS_REGION)]
    """The AWS region of the backup bucket: away from the hosts (a disaster that takes
    them must not take their backups). Required."""
    interval_minutes: Annotated[int, Field(ge=1, le=60)] = 5
    """Minutes between two backups of a host (its systemd timer). Default 5."""
    rpo_minutes: Annotated[int, Field(ge=1, le=1440)] = 5
    """The recovery point objective: the most data, in minutes, a restore may lose.
    ``ops restore-drill`` fails when the latest snapshot is older. Default 5."""
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    """What ``restic forget --prune`` keeps."""
    object_lock_days: Annotated[int, Field(ge=1, le=3650)] = 30
    """Days each object version is locked (governance mode) against deletion, even with
    the host's own key. Default 30."""
    noncurrent_expiry_days: Annotated[int, Field(ge=1, le=3650)] = 60
    """Days a deleted or overwritten version stays before the lifecycle expires it; at
    least ``objectLockDays``. Default 60."""

    @model_validator(mode="after")
    def _schedule_meets_the_target(self) -> BackupSettings:
        problems = []
        if self.interval_minutes > self.rpo_minutes:
            problems.append(
                f"@intervalMinutes: {self.interval_minutes} minutes between backups cannot "
                f"meet rpoMinutes {self.rpo_minutes}; back up at least every "
                f"{self.rpo_minutes} minutes"
            )
        if self.noncurrent_expiry_days < self.object_lock_days:
            problems.append(
                f"@noncurrentExpiryDays: {self.noncurrent_expiry_days} is shorter than "
                f"objectLockDays {self.object_lock_days}; the lifecycle cannot expire a "
                "version still locked"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self


def host_policy(bucket_arn: str, host: str) -> str:
    """The IAM policy of ``host``'s backup user: list, read, write and delete under its
    own prefix only (restic's S3 backend needs exactly these: ListBucket for its
    listing, Get/Put/Delete for its files; a delete on a versioned, locked bucket only
    adds a delete marker)."""
    prefix = f"{host}/"
    statements = [
        {
            "Sid": "ListOwnPrefix",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
        },
        {
            "Sid": "OwnObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": f"{bucket_arn}/{prefix}*",
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def tls_only_policy(bucket_arn: str) -> str:
    """Deny every request not made over TLS (FSBP S3.5)."""
    statement = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, sort_keys=True)


@dataclass(frozen=True)
class HostCredentials:
    """What one host needs to reach its own part of the bucket."""

    repository: pulumi.Output[str]
    """``s3:<endpoint>/<bucket>/<host>``: restic's repository."""
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]
    """A secret."""


class BackupBucket(pulumi.ComponentResource):
    """The fleet's backup bucket and one scoped IAM user per host. Create it with the
    bucket region's provider in ``opts``."""

    bucket: aws.s3.Bucket
    credentials: dict[str, HostCredentials]
    """By host name."""

    def __init__(
        self,
        name: str,
        settings: BackupSettings,
        *,
        hosts: list[str],
        protect: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``hosts``: the host names, each the prefix of its repository; ``protect``:
        the bucket (production data)."""
        super().__init__("trading-infra:backup:BackupBucket", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = component_tags("backup")
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket_prefix="trading-infra-backups-",
            # Object lock can only be turned on when a bucket is created.
            object_lock_enabled=True,
            force_destroy=False,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        bucket_id = self.bucket.id
        private_bucket(name, bucket_id, child)
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket_id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=child,
        )
        aws.s3.BucketObjectLockConfiguration(
            f"{name}-object-lock",
            bucket=bucket_id,
            object_lock_enabled="Enabled",
            rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                    mode="GOVERNANCE", days=settings.object_lock_days
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket_id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-old-versions",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=settings.noncurrent_expiry_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=1
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket_id,
            policy=self.bucket.arn.apply(tls_only_policy),
            opts=child,
        )
        endpoint = f"s3.{settings.bucket_region}.amazonaws.com"
        self.credentials = {}
        for host in hosts:
            user = aws.iam.User(
                f"{name}-{host}",
                name=f"trading-infra-backup-{host}",
                path="/trading-infra/",
                tags=tags,
                opts=child,
            )
            aws.iam.UserPolicy(
                f"{name}-{host}-policy",
                user=user.name,
                policy=self.bucket.arn.apply(lambda arn, host=host: host_policy(arn, host)),
                opts=child,
            )
            key = aws.iam.AccessKey(f"{name}-{host}-key", user=user.name, opts=child)
            self.credentials[host] = HostCredentials(
                repository=self.bucket.bucket.apply(
                    lambda bucket, host=host: f"s3:{endpoint}/{bucket}/{host}"
                ),
                access_key_id=key.id,
                secret_access_key=pulumi.Output.secret(key.secret),
            )
        self.register_outputs({"bucket": self.bucket.bucket})


def backup_env(repository: str, access_key_id: str, secret: str, password: str) -> str:
    """The host's ``backup.env``, systemd ``EnvironmentFile`` syntax (one quoted value a
    line), read by the service and by ``ops restore-drill``."""
    values = {
        "RESTIC_REPOSITORY": repository,
        "RESTIC_PASSWORD": password,
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
    }
    for key, value in values.items():
        if any(c in value for c in '\n"\\'):
            raise ValueError(f"backup.env: {key} holds a newline, quote or backslash")
    return "".join(f'{key}="{value}"\n' for key, value in values.items())


def backup_service() -> str:
    """The oneshot service the timer starts: the backup script, as root, low priority."""
    return "\n".join(
        [
            "[Unit]",
            "Description=trading-infra: restic backup of this host's stateful data",
            "Wants=network-online.target",
            "After=network-online.target docker.service",
            "",
            "[Service]",
            "Type=oneshot",
            f"EnvironmentFile={BACKUP_ENV}",
            f"ExecStart={BACKUP_SCRIPT}",
            "Nice=10",
            "IOSchedulingClass=idle",
            # One run at a time: a slow run makes the next start wait, never overlap.
            "TimeoutStartSec=30min",
            "",
        ]
    )


def backup_timer(interval_minutes: int) -> str:
    """Every ``interval_minutes`` after the last run started, and soon after boot."""
    return "\n".join(
        [
            "[Unit]",
            f"Description=trading-infra: restic backup every {interval_minutes} min",
            "",
            "[Timer]",
            "OnBootSec=2min",
            f"OnUnitActiveSec={interval_minutes}min",
            "AccuracySec=15s",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )


def backup_script_settings(
    host: str, role: str, settings: BackupSettings, app_dir: str, questdb_http_port: int
) -> dict[str, str | int]:
    """The ``readonly`` settings the backup script runs with on ``host``."""
    retention = settings.retention
    return {
        "APP_DIR": app_dir,
        "BACKUP_HOST": host,
        "ROLE": role,
        "QUESTDB_HTTP_PORT": questdb_http_port,
        "METRICS": BACKUP_METRICS,
        "LOCK": BACKUP_LOCK,
        "FORGET_ARGS": shlex.join(
            [
                f"--keep-within={retention.keep_within_hours}h",
                f"--keep-hourly={retention.keep_hourly}",
                f"--keep-daily={retention.keep_daily}",
                f"--keep-monthly={retention.keep_monthly}",
            ]
        ),
    }


def restore_drill_settings(host: str) -> dict[str, str | int]:
    """The ``readonly`` settings the restore drill runs with on ``host``."""
    return {
        "BACKUP_ENV": BACKUP_ENV,
        "BACKUP_HOST": host,
        "LOCK": BACKUP_LOCK,
        "SCRATCH_PARENT": RESTORE_SCRATCH,
    }


def restore_drill_sudoers(user: str) -> str:
    """``user`` may run the drill as root with no arguments (``""``: sudoers(5))."""
    return (
        "# Managed by trading-infra: the monthly restore drill, nothing else.\n"
        f'{user} ALL=(root) NOPASSWD: {RESTORE_DRILL} ""\n'
    )
