"""End to end, in memory: alarm events go through the real Lambda code into a
KeyValueStore double, and each routing decision is made by the real CloudFront Function
running in Node. A Singapore outage moves POST and GET from US viewers to eu, recovery
moves them back after the hysteresis, and a drained region stays drained."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from components.failover_lambda.handler import DRAINING, HEALTHY, Settings, run
from stacks import outputs
from tests.support import ROOT, committed_config, plan_sg

START = datetime(2026, 11, 21, 9, 0, 0, tzinfo=UTC)
RECOVERY_SECONDS = 300
ROUTER = ROOT / "tests" / "edge" / "route.mjs"


# Named as botocore names them: the Lambda catches them by these attribute names.
class ResourceNotFoundException(Exception):  # noqa: N818
    pass


class ConflictException(Exception):  # noqa: N818
    pass


@dataclass
class KeyValueStoreDouble:
    """The API's semantics that matter here: one ETag for the whole store, conditional
    writes, a missing key raising ResourceNotFoundException."""

    items: dict[str, str]
    etag: int = 1
    writes: list[tuple[str, str]] = field(default_factory=list)

    class exceptions:  # noqa: N801 (mirrors botocore's client.exceptions)
        ResourceNotFoundException = ResourceNotFoundException
        ConflictException = ConflictException

    def describe_key_value_store(self, KvsARN: str) -> dict[str, Any]:  # noqa: N803
        return {"ETag": str(self.etag)}

    def get_key(self, KvsARN: str, Key: str) -> dict[str, Any]:  # noqa: N803
        if Key not in self.items:
            raise ResourceNotFoundException(Key)
        return {"Key": Key, "Value": self.items[Key]}

    def put_key(self, KvsARN: str, Key: str, Value: str, IfMatch: str) -> dict[str, Any]:  # noqa: N803
        if IfMatch != str(self.etag):
            raise ConflictException(IfMatch)
        self.items[Key] = Value
        self.etag += 1
        self.writes.append((Key, Value))
        return {"ETag": str(self.etag)}


@dataclass
class CloudWatchDouble:
    """Composite alarm states and when each last changed."""

    states: dict[str, tuple[str, datetime]]

    def set(self, alarm: str, state: str, at: datetime) -> None:
        self.states[alarm] = (state, at)

    def describe_alarms(self, AlarmNames: list[str], AlarmTypes: list[str]) -> dict[str, Any]:  # noqa: N803
        (name,) = AlarmNames
        state, since = self.states[name]
        return {
            "CompositeAlarms": [
                {
                    "AlarmName": name,
                    "StateValue": state,
                    "StateUpdatedTimestamp": since,
                    "StateTransitionedTimestamp": since,
                }
            ]
        }


class World:
    """The committed sg edge's table, both regions' Lambdas, and a clock."""

    def __init__(self) -> None:
        plan = plan_sg(committed_config("sg"))
        self.regions: list[str] = plan.outputs[outputs.EDGE_REGIONS]
        table = dict(plan.outputs[outputs.ROUTING_TABLE])
        table.update({f"health:{region}": HEALTHY for region in self.regions})
        self.store = KeyValueStoreDouble(items=table)
        self.cloudwatch = CloudWatchDouble(
            states={
                self.alarm(region): ("OK", START - timedelta(days=1)) for region in self.regions
            }
        )
        self.now = START

    @staticmethod
    def alarm(region: str) -> str:
        return f"trading-infra-{region}-cannot-serve"

    def settings(self, region: str) -> Settings:
        return Settings(
            kvs_arn="arn:aws:cloudfront::123456789012:key-value-store/sim",
            region=region,
            alarm_name=self.alarm(region),
            recovery_seconds=RECOVERY_SECONDS,
        )

    def alarm_changes(self, region: str, state: str) -> dict[str, Any]:
        """The alarm changes state now and EventBridge invokes the region's Lambda."""
        self.cloudwatch.set(self.alarm(region), state, self.now)
        event = {
            "source": "aws.cloudwatch",
            "detail-type": "CloudWatch Alarm State Change",
            "detail": {"alarmName": self.alarm(region), "state": {"value": state}},
        }
        return self.invoke(region, event)

    def tick(self, seconds: int) -> None:
        """Time passes; the recovery schedule invokes every region's Lambda each minute."""
        for _ in range(seconds // 60):
            self.now += timedelta(seconds=60)
            for region in self.regions:
                self.invoke(region, {"source": "aws.events", "detail-type": "Scheduled Event"})

    def invoke(self, region: str, event: dict[str, Any]) -> dict[str, Any]:
        return run(event, self.settings(region), self.store, self.cloudwatch, now=lambda: self.now)

    def route(self, *requests: tuple[str, str]) -> list[tuple[str, list[str] | None]]:
        payload = {
            "table": self.store.items,
            "regions": self.regions,
            "requests": [{"method": m, "country": c} for m, c in requests],
        }
        result = subprocess.run(
            ["node", str(ROUTER)],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return [(d["region"], d["group"]) for d in json.loads(result.stdout)]


def test_singapore_outage_and_recovery_for_us_viewers() -> None:
    world = World()
    orders, quotes = ("POST", "US"), ("GET", "US")
    assert world.route(orders, quotes) == [("sg", None), ("sg", ["sg", "eu"])]

    # Singapore dies: its composite alarm fires, the Lambda marks it unhealthy.
    assert world.alarm_changes("sg", "ALARM")["now"] == "unhealthy"
    assert world.route(orders, quotes) == [("eu", None), ("eu", ["eu", "sg"])]

    # It recovers, but a minute of OK is not enough: traffic stays in Frankfurt.
    world.tick(60)
    assert world.alarm_changes("sg", "OK")["decision"] == "unchanged"
    world.tick(RECOVERY_SECONDS - 60)
    assert world.store.items["health:sg"] == "unhealthy"
    assert world.route(orders) == [("eu", None)]

    # After the hysteresis the schedule marks it healthy and traffic comes back.
    world.tick(60)
    assert world.store.items["health:sg"] == HEALTHY
    assert world.route(orders, quotes) == [("sg", None), ("sg", ["sg", "eu"])]
    assert world.store.writes == [("health:sg", "unhealthy"), ("health:sg", HEALTHY)]


def test_a_flapping_region_does_not_bounce_traffic() -> None:
    world = World()
    world.alarm_changes("sg", "ALARM")
    for _ in range(3):
        world.tick(120)
        world.alarm_changes("sg", "OK")
        world.tick(120)
        world.alarm_changes("sg", "ALARM")
    assert world.store.writes == [("health:sg", "unhealthy")]
    assert world.route(("POST", "IN")) == [("eu", None)]


def test_a_drained_region_stays_drained() -> None:
    world = World()
    world.store.items["health:eu"] = DRAINING  # the operator's put-key
    assert world.route(("POST", "DE")) == [("sg", None)]
    world.alarm_changes("eu", "ALARM")
    world.tick(120)
    world.alarm_changes("eu", "OK")
    world.tick(RECOVERY_SECONDS * 2)
    assert world.store.items["health:eu"] == DRAINING
    assert world.store.writes == []
    assert world.route(("POST", "DE"), ("GET", "DE")) == [("sg", None), ("sg", ["sg", "eu"])]


def test_both_regions_down_still_serve_from_the_preferred_one() -> None:
    world = World()
    world.alarm_changes("sg", "ALARM")
    world.alarm_changes("eu", "ALARM")
    assert world.route(("POST", "US"), ("POST", "DE")) == [("sg", None), ("eu", None)]
