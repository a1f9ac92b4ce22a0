"""Flip a region's health key in the edge's KeyValueStore from its "cannot serve" alarm.

Invoked by EventBridge on every state change of the region's composite alarm, and once a
minute by a schedule (recovery is judged on the schedule: a region flagged unhealthy
stays so until its alarm has been OK for ``RECOVERY_SECONDS``).

- alarm ALARM                       -> ``unhealthy`` (at once)
- alarm OK for ``RECOVERY_SECONDS``  -> ``healthy``
- ``draining`` (an operator's decision) is never changed
- anything it cannot read is logged and ignored, never raised

Writes are conditional, as the KeyValueStore API requires: describe for the ETag, then
put with ``IfMatch``; a conflict (someone else wrote) is retried with a fresh ETag.
Every invocation logs one JSON line with its decision.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
DRAINING = "draining"
MAX_ATTEMPTS = 5

logger = logging.getLogger("failover")
logger.setLevel(logging.INFO)


@dataclass(frozen=True)
class Settings:
    """The function's environment."""

    kvs_arn: str
    region: str
    alarm_name: str
    recovery_seconds: int

    @property
    def key(self) -> str:
        return f"health:{self.region}"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        return cls(
            kvs_arn=environ["KVS_ARN"],
            region=environ["REGION_ID"],
            alarm_name=environ["ALARM_NAME"],
            recovery_seconds=int(environ["RECOVERY_SECONDS"]),
        )


def decide(
    current: str | None, alarm_state: str, ok_for_seconds: float, recovery_seconds: int
) -> str | None:
    """The health value to write, or None to leave the key as it is.

    ``current`` is the key's value (None when missing); ``ok_for_seconds`` is how long the
    alarm has been in its current state.
    """
    if current == DRAINING:
        return None
    if alarm_state == "ALARM":
        return None if current == UNHEALTHY else UNHEALTHY
    if alarm_state == "OK":
        if current == UNHEALTHY and ok_for_seconds < recovery_seconds:
            return None
        return None if current == HEALTHY else HEALTHY
    # INSUFFICIENT_DATA: no evidence either way.
    return None


def is_invocation(event: Any, alarm_name: str) -> bool:
    """A state change of our alarm, or the recovery schedule's tick."""
    if not isinstance(event, dict):
        return False
    if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
        return True
    detail = event.get("detail")
    return (
        event.get("source") == "aws.cloudwatch"
        and event.get("detail-type") == "CloudWatch Alarm State Change"
        and isinstance(detail, dict)
        and detail.get("alarmName") == alarm_name
    )


def alarm_state(cloudwatch: Any, alarm_name: str, now: datetime) -> tuple[str, float]:
    """The composite alarm's state and how long it has held it (the source of truth:
    events can arrive late or out of order).

    "How long" counts from ``StateTransitionedTimestamp``, the last change of
    ``StateValue``; ``StateUpdatedTimestamp`` moves on any update, a new reason included,
    so recovery timed from it could be postponed for ever (CloudWatch API reference,
    CompositeAlarm)."""
    found = cloudwatch.describe_alarms(AlarmNames=[alarm_name], AlarmTypes=["CompositeAlarm"])
    (alarm,) = found["CompositeAlarms"]
    since = alarm["StateTransitionedTimestamp"]
    return alarm["StateValue"], (now - since).total_seconds()


def current_value(kvs: Any, kvs_arn: str, key: str) -> str | None:
    try:
        return kvs.get_key(KvsARN=kvs_arn, Key=key)["Value"]
    except kvs.exceptions.ResourceNotFoundException:
        return None


def write(kvs: Any, settings: Settings, desired: str) -> tuple[str | None, int]:
    """Put ``desired`` with the store's ETag, re-reading on a conflict. Returns what was
    written (None when a re-read found ``draining`` or the value already there) and the
    attempts used."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        etag = kvs.describe_key_value_store(KvsARN=settings.kvs_arn)["ETag"]
        try:
            kvs.put_key(KvsARN=settings.kvs_arn, Key=settings.key, Value=desired, IfMatch=etag)
            return desired, attempt
        except kvs.exceptions.ConflictException:
            current = current_value(kvs, settings.kvs_arn, settings.key)
            if current in (DRAINING, desired):
                return None, attempt
    raise RuntimeError(f"{settings.key}: still conflicting after {MAX_ATTEMPTS} attempts")


def log(decision: str, **fields: Any) -> dict[str, Any]:
    line = {"decision": decision, **fields}
    logger.info(json.dumps(line, sort_keys=True, default=str))
    return line


def run(
    event: Any,
    settings: Settings,
    kvs: Any,
    cloudwatch: Any,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """The decision for one invocation, with the clients given (tests inject them)."""
    if not is_invocation(event, settings.alarm_name):
        return log("ignored", reason="not this alarm's state change or the schedule", event=event)
    state, held_for = alarm_state(cloudwatch, settings.alarm_name, now())
    current = current_value(kvs, settings.kvs_arn, settings.key)
    desired = decide(current, state, held_for, settings.recovery_seconds)
    fields = {
        "region": settings.region,
        "alarm": state,
        "alarm_held_seconds": round(held_for),
        "was": current,
    }
    if desired is None:
        return log("unchanged", **fields)
    written, attempts = write(kvs, settings, desired)
    if written is None:
        return log("unchanged", **fields, attempts=attempts, reason="changed by someone else")
    return log("set", **fields, now=written, attempts=attempts)


_clients: dict[str, Any] = {}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point."""
    import boto3

    if not _clients:
        # The KeyValueStore API is global (SigV4A); CloudWatch is the region's own.
        _clients["kvs"] = boto3.client("cloudfront-keyvaluestore", region_name="us-east-1")
        _clients["cloudwatch"] = boto3.client("cloudwatch")
    settings = Settings.from_environment(os.environ)
    started = time.monotonic()
    try:
        result = run(event, settings, _clients["kvs"], _clients["cloudwatch"])
    except Exception as error:
        log("error", region=settings.region, error=repr(error))
        raise
    result["elapsed_ms"] = round((time.monotonic() - started) * 1000)
    return result
