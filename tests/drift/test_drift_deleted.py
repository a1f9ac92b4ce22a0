"""Deletions need a deployment of their own: the eu stack, built fresh in moto each time."""

from __future__ import annotations

import pytest

from tests.drift.conftest import World, build_world, drifted

EU = "eu-central-1"


@pytest.fixture
def world(moto_url: str) -> World:
    return build_world(moto_url, "eu")


def test_a_deleted_listener_rule_is_missing(world: World) -> None:
    world.clients("elbv2", EU).delete_rule(RuleArn=world.resource("alb-production-rule")["id"])
    report = world.scan()
    assert drifted(report) == [
        ("missing", "aws:lb/listenerRule:ListenerRule", "alb-production-rule")
    ]
    assert report.exit_code() == 2


def test_a_deleted_target_group_is_missing(world: World) -> None:
    elbv2 = world.clients("elbv2", EU)
    elbv2.delete_rule(RuleArn=world.resource("alb-production-rule")["id"])
    elbv2.delete_target_group(TargetGroupArn=world.resource("alb-tg")["id"])
    report = world.scan()
    assert drifted(report) == [
        ("missing", "aws:lb/listenerRule:ListenerRule", "alb-production-rule"),
        ("missing", "aws:lb/targetGroup:TargetGroup", "alb-tg"),
    ]


def test_a_hand_added_listener_rule_is_unmanaged(world: World) -> None:
    elbv2 = world.clients("elbv2", EU)
    rule = elbv2.create_rule(
        ListenerArn=world.resource("alb-listener")["id"],
        Priority=99,
        Conditions=[{"Field": "path-pattern", "Values": ["/debug/*"]}],
        Actions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "200", "ContentType": "text/plain"},
            }
        ],
    )["Rules"][0]["RuleArn"]
    report = world.scan()
    assert [(f.status, f.id) for f in report.of("unmanaged")] == [("unmanaged", rule)]
    assert "priority 99" in (report.of("unmanaged")[0].detail or "")


def test_a_deregistered_task_definition_is_missing(world: World) -> None:
    task = world.resource("api-task")
    world.clients("ecs", EU).deregister_task_definition(taskDefinition=task["outputs"]["arn"])
    assert drifted(world.scan()) == [
        ("missing", "aws:ecs/taskDefinition:TaskDefinition", "api-task")
    ]
