"""ContainerRegistry: lifecycle policy and context digest (pure), the component (mocked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from components.registry import (
    ContainerRegistry,
    RegistrySettings,
    image_digest,
    lifecycle_policy,
)
from ops.runtime import SECRET_PLACEHOLDER, Plan
from tests.support import ROOT, is_taggable, run_component

DIGEST_URI = "111122223333.dkr.ecr.ap-southeast-1.amazonaws.com/api@sha256:" + "ab" * 32


def registry_plan(settings: RegistrySettings, protect: bool = False) -> Plan:
    return run_component(lambda: ContainerRegistry("reg", settings, protect=protect) and None)


def built(**overrides) -> RegistrySettings:
    return RegistrySettings.model_validate(
        {"repositoryName": "trading-api", "build": {"context": "app"}, **overrides}
    )


# --- pure functions ------------------------------------------------------------------


def test_lifecycle_policy_expires_untagged_then_keeps_the_newest() -> None:
    rules = json.loads(lifecycle_policy(keep_last_images=25, untagged_expiry_days=3))["rules"]
    untagged, keep = sorted(rules, key=lambda r: r["rulePriority"])
    assert untagged["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 3,
    }
    assert keep["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 25,
    }
    # ECR requires the `any` rule to be evaluated last.
    assert keep["rulePriority"] == max(r["rulePriority"] for r in rules)
    assert {r["action"]["type"] for r in rules} == {"expire"}


@pytest.mark.parametrize(("keep", "days"), [(0, 7), (10, 0)])
def test_lifecycle_policy_rejects_non_positive_counts(keep: int, days: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        lifecycle_policy(keep, days)


def make_context(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "main.py").write_text("print('v1')\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_main.py").write_text("assert True\n")
    (tmp_path / ".dockerignore").write_text("# comment\ntests/\n")
    return tmp_path


def digest(context: Path, dockerfile: str = "Dockerfile", **overrides) -> str:
    options = {"platform": "linux/amd64", "build_args": None, **overrides}
    return image_digest(context, context / dockerfile, **options)


def test_image_digest_follows_content(tmp_path: Path) -> None:
    context = make_context(tmp_path)
    first = digest(context)
    assert digest(context) == first
    (context / "main.py").write_text("print('v2')\n")
    assert digest(context) != first


def test_image_digest_skips_dockerignored_files(tmp_path: Path) -> None:
    context = make_context(tmp_path)
    first = digest(context)
    (context / "tests" / "test_main.py").write_text("assert 1 == 1\n")
    assert digest(context) == first


def test_image_digest_covers_renames(tmp_path: Path) -> None:
    context = make_context(tmp_path)
    first = digest(context)
    (context / "main.py").rename(context / "app.py")
    assert digest(context) != first


def test_image_digest_follows_dockerignore_re_includes_and_double_star(tmp_path: Path) -> None:
    """`!` re-includes a file Docker then sends; `**` matches at any depth."""
    context = make_context(tmp_path)
    (context / "docs").mkdir()
    (context / "docs" / "keep.md").write_text("v1\n")
    (context / "docs" / "drop.md").write_text("v1\n")
    (context / "deep" / "er").mkdir(parents=True)
    (context / "deep" / "er" / "x.pyc").write_text("v1\n")
    (context / ".dockerignore").write_text("tests/\ndocs\n!docs/keep.md\n**/*.pyc\n")
    first = digest(context)
    (context / "docs" / "keep.md").write_text("v2\n")
    assert digest(context) != first, "a re-included file is sent"
    second = digest(context)
    (context / "docs" / "drop.md").write_text("v2\n")
    (context / "deep" / "er" / "x.pyc").write_text("v2\n")
    assert digest(context) == second, "ignored files are not"


def test_image_digest_changes_with_platform_dockerfile_and_build_args(tmp_path: Path) -> None:
    """pulumi-docker rebuilds when any build input changes; with immutable tags each of
    these must therefore give a new tag, or the push is refused."""
    context = make_context(tmp_path)
    (context / "Dockerfile.arm").write_text("FROM scratch\n")
    base = digest(context)
    assert digest(context, platform="linux/arm64") != base
    assert digest(context, "Dockerfile.arm") != base
    assert digest(context, build_args={"VERSION": "2"}) != base
    (context / "Dockerfile").write_text("FROM scratch\nUSER 10001\n")
    assert digest(context) != base


def test_image_digest_reads_a_dockerfile_outside_the_context(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    outside = tmp_path / "Dockerfile.prod"
    outside.write_text("FROM scratch\n")
    first = image_digest(context, outside, "linux/amd64")
    outside.write_text("FROM scratch\nUSER 1\n")
    assert image_digest(context, outside, "linux/amd64") != first


# --- the component ------------------------------------------------------------------


def test_repository_scans_on_push_with_immutable_tags() -> None:
    repo = registry_plan(built()).one("aws:ecr/repository:Repository")
    assert repo.inputs["name"] == "trading-api"
    assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo.inputs["encryptionConfigurations"] == [{"encryptionType": "AES256"}]


def test_kms_key_encrypts_the_repository() -> None:
    key = "arn:aws:kms:ap-southeast-1:111122223333:key/abc"
    repo = registry_plan(built(kms_key_arn=key)).one("aws:ecr/repository:Repository")
    assert repo.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": key}]


def test_lifecycle_policy_is_attached_with_the_configured_counts() -> None:
    plan = registry_plan(built(keep_last_images=12, untagged_expiry_days=2))
    policy = plan.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs
    assert policy["repository"] == "trading-api"
    assert policy["policy"] == lifecycle_policy(12, 2)


def test_built_image_is_tagged_by_context_and_referenced_by_digest() -> None:
    captured: dict[str, ContainerRegistry] = {}

    def program() -> None:
        captured["registry"] = ContainerRegistry("reg", built())

    plan = run_component(program)
    image = plan.one("docker:index/image:Image")
    tag = image_digest(ROOT / "app", ROOT / "app" / "Dockerfile", "linux/amd64")[:16]
    url = "123456789012.dkr.ecr.ap-southeast-1.amazonaws.com/trading-api"
    assert image.inputs["imageName"] == f"{url}:{tag}"
    assert image.inputs["build"] == {
        "context": "app",
        "dockerfile": "app/Dockerfile",
        "platform": "linux/amd64",
    }
    # ECR credentials are pushed with the image, and stay secret in state.
    assert image.inputs["registry"] == SECRET_PLACEHOLDER
    assert captured["registry"].image is not None


def test_image_ref_is_a_digest_reference() -> None:
    def program() -> None:
        import pulumi

        pulumi.export("ref", ContainerRegistry("reg", built()).image_ref)

    ref = run_component(program).outputs["ref"]
    assert ref.startswith("123456789012.dkr.ecr.ap-southeast-1.amazonaws.com/trading-api@sha256:")


def test_prebuilt_image_uri_skips_the_build() -> None:
    def program() -> None:
        import pulumi

        settings = RegistrySettings(repository_name="trading-api", image_uri=DIGEST_URI)
        pulumi.export("ref", ContainerRegistry("reg", settings).image_ref)

    plan = run_component(program)
    assert plan.of_type("docker:index/image:Image") == []
    assert plan.outputs["ref"] == DIGEST_URI


def test_without_a_source_the_app_is_built() -> None:
    build = RegistrySettings().image_build
    assert build is not None and (build.context, build.dockerfile) == ("app", "Dockerfile")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"build": {"context": "app"}, "imageUri": DIGEST_URI},
            "build and imageUri are both set",
        ),
        ({"imageUri": "example.org/api:latest"}, "should match pattern"),
    ],
)
def test_image_source_is_validated(settings: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RegistrySettings.model_validate(settings)


@pytest.mark.parametrize("protect", [True, False])
def test_protect_applies_to_the_repository(protect: bool) -> None:
    plan = registry_plan(built(), protect=protect)
    assert plan.one("aws:ecr/repository:Repository").protect is protect


def test_children_are_parented_and_tagged() -> None:
    plan = registry_plan(built())
    component = plan.one("trading-infra:registry:ContainerRegistry")
    children = [r for r in plan.resources if r is not component]
    assert {r.parent for r in children} == {component.urn}
    assert all(r.tag("component") == "registry" for r in children if is_taggable(r))
