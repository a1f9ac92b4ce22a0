"""The region-health Lambda against botocore's Stubber and the real service models
(moto implements neither composite alarms nor the KeyValueStore API)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from components.failover_lambda import handler as failover
from components.failover_lambda.handler import (
    DRAINING,
    HEALTHY,
    UNHEALTHY,
    Settings,
    decide,
    run,
)

KVS_ARN = "arn:aws:cloudfront::123456789012:key-value-store/0d6ba4d4-5a0e-4c1e-9e8a-2f6f1c0d9a11"
ALARM = "trading-api-sg-cannot-serve"
SETTINGS = Settings(kvs_arn=KVS_ARN, region="sg", alarm_name=ALARM, recovery_seconds=300)
NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)

ALARM_EVENT = {
    "version": "0",
    "source": "aws.cloudwatch",
    "detail-type": "CloudWatch Alarm State Change",
    "resources": [f"arn:aws:cloudwatch:ap-southeast-1:123456789012:alarm:{ALARM}"],
    "detail": {"alarmName": ALARM, "state": {"value": "ALARM"}},
}
SCHEDULE_EVENT = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


class Aws:
    """Stubbed clients with helpers that queue the calls the Lambda should make."""

    def __init__(self) -> None:
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.kvs = boto3.client("cloudfront-keyvaluestore", region_name="us-east-1", **credentials)
        self.cloudwatch = boto3.client("cloudwatch", region_name="ap-southeast-1", **credentials)
        self.kvs_stub = Stubber(self.kvs)
        self.cloudwatch_stub = Stubber(self.cloudwatch)

    def alarm(self, state: str, held: timedelta, updated: timedelta | None = None) -> None:
        """The alarm in ``state`` since ``held`` ago, last updated (a new reason, say)
        ``updated`` ago (default: when it changed state)."""
        self.cloudwatch_stub.add_response(
            "describe_alarms",
            {
                "MetricAlarms": [],
                "CompositeAlarms": [
                    {
                        "AlarmName": ALARM,
                        "StateValue": state,
                        "StateUpdatedTimestamp": NOW - (held if updated is None else updated),
                        "StateTransitionedTimestamp": NOW - held,
                        "AlarmRule": 'ALARM("x")',
                    }
                ],
            },
            {"AlarmNames": [ALARM], "AlarmTypes": ["CompositeAlarm"]},
        )

    def value(self, value: str | None) -> None:
        params = {"KvsARN": KVS_ARN, "Key": "health:sg"}
        if value is None:
            self.kvs_stub.add_client_error(
                "get_key",
                service_error_code="ResourceNotFoundException",
                http_status_code=404,
                expected_params=params,
            )
        else:
            self.kvs_stub.add_response(
                "get_key",
                {"Key": "health:sg", "Value": value, "ItemCount": 5, "TotalSizeInBytes": 90},
                params,
            )

    def etag(self, etag: str) -> None:
        self.kvs_stub.add_response(
            "describe_key_value_store",
            {
                "ItemCount": 5,
                "TotalSizeInBytes": 90,
                "KvsARN": KVS_ARN,
                "Created": NOW,
                "ETag": etag,
            },
            {"KvsARN": KVS_ARN},
        )

    def put(self, value: str, etag: str, conflict: bool = False) -> None:
        params = {"KvsARN": KVS_ARN, "Key": "health:sg", "Value": value, "IfMatch": etag}
        if conflict:
            self.kvs_stub.add_client_error(
                "put_key",
                service_error_code="ConflictException",
                http_status_code=409,
                expected_params=params,
            )
        else:
            self.kvs_stub.add_response(
                "put_key", {"ETag": f"{etag}+1", "ItemCount": 5, "TotalSizeInBytes": 90}, params
            )

    def run(self, event: Any) -> dict[str, Any]:
        return run(event, SETTINGS, self.kvs, self.cloudwatch, now=lambda: NOW)


@pytest.fixture
def aws() -> Iterator[Aws]:
    clients = Aws()
    with clients.kvs_stub, clients.cloudwatch_stub:
        yield clients
        # Every queued call was made, and no other: Stubber raises on an unexpected one.
        clients.kvs_stub.assert_no_pending_responses()
        clients.cloudwatch_stub.assert_no_pending_responses()


# --- the decision (pure) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "state", "held", "expected"),
    [
        (HEALTHY, "ALARM", 0, UNHEALTHY),
        (None, "ALARM", 0, UNHEALTHY),
        (UNHEALTHY, "ALARM", 999, None),
        (UNHEALTHY, "OK", 299, None),
        (UNHEALTHY, "OK", 300, HEALTHY),
        (HEALTHY, "OK", 0, None),
        (None, "OK", 0, HEALTHY),
        ("garbage", "OK", 0, HEALTHY),
        (DRAINING, "ALARM", 0, None),
        (DRAINING, "OK", 10_000, None),
        (HEALTHY, "INSUFFICIENT_DATA", 0, None),
        (UNHEALTHY, "INSUFFICIENT_DATA", 10_000, None),
    ],
)
def test_decide(current: str | None, state: str, held: float, expected: str | None) -> None:
    assert decide(current, state, held, recovery_seconds=300) == expected


# --- the handler against the stubbed APIs ---------------------------------------------


def test_alarm_marks_the_region_unhealthy(aws: Aws) -> None:
    aws.alarm("ALARM", timedelta(seconds=5))
    aws.value(HEALTHY)
    aws.etag("E1")
    aws.put(UNHEALTHY, "E1")
    result = aws.run(ALARM_EVENT)
    assert result["decision"] == "set"
    assert (result["was"], result["now"], result["attempts"]) == (HEALTHY, UNHEALTHY, 1)


def test_ok_before_the_hysteresis_leaves_the_region_unhealthy(aws: Aws) -> None:
    aws.alarm("OK", timedelta(seconds=60))
    aws.value(UNHEALTHY)
    ok_event = {**ALARM_EVENT, "detail": {"alarmName": ALARM, "state": {"value": "OK"}}}
    assert aws.run(ok_event)["decision"] == "unchanged"


def test_ok_after_the_hysteresis_marks_the_region_healthy(aws: Aws) -> None:
    aws.alarm("OK", timedelta(seconds=301))
    aws.value(UNHEALTHY)
    aws.etag("E7")
    aws.put(HEALTHY, "E7")
    result = aws.run(SCHEDULE_EVENT)
    assert (result["decision"], result["now"]) == ("set", HEALTHY)


def test_recovery_counts_from_the_last_state_change_not_the_last_update(aws: Aws) -> None:
    """OK for 10 minutes, its reason updated 30 s ago: the region recovers. Timed from
    StateUpdatedTimestamp it would wait for ever while the children keep updating."""
    aws.alarm("OK", timedelta(minutes=10), updated=timedelta(seconds=30))
    aws.value(UNHEALTHY)
    aws.etag("E8")
    aws.put(HEALTHY, "E8")
    result = aws.run(SCHEDULE_EVENT)
    assert (result["decision"], result["now"], result["alarm_held_seconds"]) == (
        "set",
        HEALTHY,
        600,
    )


def test_conflict_on_the_etag_is_retried_then_succeeds(aws: Aws) -> None:
    aws.alarm("ALARM", timedelta(seconds=5))
    aws.value(HEALTHY)
    aws.etag("E1")
    aws.put(UNHEALTHY, "E1", conflict=True)
    aws.value(HEALTHY)  # someone else wrote another key in between
    aws.etag("E2")
    aws.put(UNHEALTHY, "E2")
    result = aws.run(ALARM_EVENT)
    assert (result["decision"], result["attempts"]) == ("set", 2)


def test_conflict_with_an_operator_draining_the_region_backs_off(aws: Aws) -> None:
    aws.alarm("ALARM", timedelta(seconds=5))
    aws.value(HEALTHY)
    aws.etag("E1")
    aws.put(UNHEALTHY, "E1", conflict=True)
    aws.value(DRAINING)
    result = aws.run(ALARM_EVENT)
    assert result["decision"] == "unchanged"
    assert result["reason"] == "changed by someone else"


def test_persistent_conflicts_raise_so_lambda_retries(aws: Aws) -> None:
    aws.alarm("ALARM", timedelta(seconds=5))
    aws.value(HEALTHY)
    for attempt in range(failover.MAX_ATTEMPTS):
        aws.etag(f"E{attempt}")
        aws.put(UNHEALTHY, f"E{attempt}", conflict=True)
        aws.value(HEALTHY)
    with pytest.raises(RuntimeError, match="still conflicting"):
        aws.run(ALARM_EVENT)


@pytest.mark.parametrize("state", ["ALARM", "OK"])
def test_draining_is_left_untouched(aws: Aws, state: str) -> None:
    aws.alarm(state, timedelta(hours=2))
    aws.value(DRAINING)
    assert aws.run(ALARM_EVENT)["decision"] == "unchanged"


def test_missing_key_counts_as_healthy_and_is_written_on_alarm(aws: Aws) -> None:
    aws.alarm("ALARM", timedelta(seconds=5))
    aws.value(None)
    aws.etag("E1")
    aws.put(UNHEALTHY, "E1")
    assert aws.run(ALARM_EVENT)["now"] == UNHEALTHY


def test_insufficient_data_changes_nothing(aws: Aws) -> None:
    aws.alarm("INSUFFICIENT_DATA", timedelta(seconds=5))
    aws.value(UNHEALTHY)
    assert aws.run(SCHEDULE_EVENT)["decision"] == "unchanged"


@pytest.mark.parametrize(
    "event",
    [
        None,
        "not an event",
        {},
        {"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change"},
        {**ALARM_EVENT, "detail": {"alarmName": "someone-elses-alarm"}},
        {**ALARM_EVENT, "detail": "not a dict"},
    ],
)
def test_malformed_or_foreign_events_are_logged_and_ignored(
    aws: Aws, event: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="failover"):
        result = aws.run(event)  # no call is queued: any AWS call would fail the test
    assert result["decision"] == "ignored"
    (record,) = caplog.records
    assert json.loads(record.getMessage())["decision"] == "ignored"


def test_each_decision_is_one_structured_log_line(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    aws.alarm("ALARM", timedelta(seconds=5))
    aws.value(HEALTHY)
    aws.etag("E1")
    aws.put(UNHEALTHY, "E1")
    with caplog.at_level(logging.INFO, logger="failover"):
        aws.run(ALARM_EVENT)
    (record,) = caplog.records
    assert json.loads(record.getMessage()) == {
        "decision": "set",
        "region": "sg",
        "alarm": "ALARM",
        "alarm_held_seconds": 5,
        "was": HEALTHY,
        "now": UNHEALTHY,
        "attempts": 1,
    }


def test_entry_point_reads_its_settings_from_the_environment(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KVS_ARN", KVS_ARN)
    monkeypatch.setenv("REGION_ID", "sg")
    monkeypatch.setenv("ALARM_NAME", ALARM)
    monkeypatch.setenv("RECOVERY_SECONDS", "300")
    monkeypatch.setattr(failover, "_clients", {"kvs": aws.kvs, "cloudwatch": aws.cloudwatch})
    result = failover.handler({"source": "somewhere-else"}, None)
    assert result["decision"] == "ignored"
    assert isinstance(result["elapsed_ms"], int)
