"""The drift job's IAM permissions against what runs: a full scan of the sg, eu and vps stacks
in moto (real botocore over HTTP) records every API call, and the drift role allows
exactly those; both policies are accepted by IAM's policy validation (moto's)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ops.drift.permissions import (
    DATA_READS,
    DRIFT_ACTIONS,
    drift_policy,
    iam_action,
    refresh_policy,
)
from tests.drift.conftest import build_world, client_factory
from tests.support import committed_plan


@pytest.fixture(scope="module")
def recorded(moto_url: str) -> set[str]:
    actions: set[str] = set()
    base = client_factory(moto_url)

    def recording(service: str, region: str) -> Any:
        client = base(service, region)
        signing_name = str(client.meta.service_model.signing_name)

        def note(model: Any = None, **_: Any) -> None:
            actions.add(iam_action(signing_name, model.name))

        client.meta.events.register("before-call", note)
        return client

    for stack in ("sg", "eu", "vps"):
        build_world(moto_url, stack).scan(clients=recording)
    return actions


NOT_IN_MOTO = {
    "cloudfront-keyvaluestore:ListKeys",
    "cloudfront:ListDistributions",
    "cloudfront:ListResponseHeadersPolicies",
    "cloudfront:ListVpcOrigins",
}
"""The reads of the types moto cannot hold (moto_deploy.NOT_IN_MOTO); the stubbed
handler tests record these and check them against DRIFT_ACTIONS."""


def test_the_drift_role_allows_exactly_the_calls_ops_drift_makes(recorded: set[str]) -> None:
    assert recorded | NOT_IN_MOTO == set(DRIFT_ACTIONS)
    assert not recorded & NOT_IN_MOTO
    (statement,) = drift_policy()["Statement"]
    assert statement["Action"] == list(DRIFT_ACTIONS)
    assert not any("*" in action for action in statement["Action"])


@pytest.mark.parametrize("stack", ["sg", "eu"])
def test_the_refresh_role_reads_every_service_of_the_stack_and_no_data(stack: str) -> None:
    types = [r.type for r in committed_plan(stack).resources]
    policy = refresh_policy(types)
    allowed, denied = policy["Statement"]
    assert denied["Effect"] == "Deny" and denied["Action"] == list(DATA_READS)
    prefixes = {action.split(":")[0] for action in allowed["Action"]}
    assert {"ec2", "elasticloadbalancing", "ecs", "logs"} <= prefixes
    # Every data read the allow list's wildcards would admit is denied explicitly.
    for read in DATA_READS:
        service, action = read.split(":")
        if service in prefixes and action.startswith(("Describe", "Get", "List")):
            assert read in denied["Action"]


def test_a_module_without_a_mapping_is_an_error() -> None:
    with pytest.raises(KeyError):
        refresh_policy(["aws:newservice/thing:Thing"])


def test_iam_accepts_both_documents(moto_url: str) -> None:
    iam = client_factory(moto_url)("iam", "us-east-1")
    types = [r.type for r in committed_plan("sg").resources]
    for name, document in (("drift", drift_policy()), ("refresh", refresh_policy(types))):
        iam.create_policy(PolicyName=f"trading-infra-{name}", PolicyDocument=json.dumps(document))
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.create_policy(
            PolicyName="broken",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}
            ),
        )
