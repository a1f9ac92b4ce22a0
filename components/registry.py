"""ContainerRegistry: an ECR repository and the image the service runs, by digest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker
from docker.utils.build import exclude_paths
from pydantic import Field, model_validator

from components.settings import Settings
from components.tagging import component_tags


def lifecycle_policy(keep_last_images: int, untagged_expiry_days: int) -> str:
    """ECR lifecycle policy: expire untagged images, then keep only the newest tagged ones.

    The ``any`` rule must carry the highest priority number (it is evaluated last), or
    ECR rejects the policy.
    """
    if keep_last_images < 1 or untagged_expiry_days < 1:
        raise ValueError("keep_last_images and untagged_expiry_days must be at least 1")
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"Expire untagged images after {untagged_expiry_days} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": untagged_expiry_days,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": f"Keep the last {keep_last_images} images",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": keep_last_images,
                    },
                    "action": {"type": "expire"},
                },
            ]
        },
        sort_keys=True,
    )


def _ignore_patterns(context: Path) -> list[str]:
    """The context's .dockerignore lines, as Docker reads them (comments and blank lines
    dropped)."""
    ignore_file = context / ".dockerignore"
    if not ignore_file.is_file():
        return []
    lines = (line.strip() for line in ignore_file.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def image_digest(
    context: Path,
    dockerfile: Path,
    platform: str,
    build_args: Mapping[str, str] | None = None,
) -> str:
    """SHA-256 over everything that changes the image: the files Docker sends from the
    context (after .dockerignore, with its ``**`` and ``!`` re-includes, matched by
    docker-py's port of moby's matcher), the Dockerfile (inside the context or not), the
    platform and the build args.

    Used as the image tag: the repository's tags are immutable, so anything that makes
    pulumi-docker rebuild must give a new tag (or the push is refused), and an unchanged
    build keeps its tag so nothing is rebuilt.
    """
    relative_dockerfile = (
        dockerfile.relative_to(context).as_posix()
        if dockerfile.is_relative_to(context)
        else dockerfile.name
    )
    sent = exclude_paths(str(context), _ignore_patterns(context), dockerfile=relative_dockerfile)
    digest = hashlib.sha256()
    header = {
        "platform": platform,
        "dockerfile": relative_dockerfile,
        "args": dict(sorted((build_args or {}).items())),
    }
    digest.update(json.dumps(header, sort_keys=True).encode() + b"\0")
    digest.update(b"dockerfile\0" + dockerfile.read_bytes() + b"\0")
    for relative in sorted(sent):
        path = context / relative
        if path.is_file():
            digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class BuildSettings(Settings):
    """``trading-infra:registry.build``: how to build the service image."""

    context: str = "app"
    """Build context directory, relative to the project root. Default ``app``."""
    dockerfile: str = "Dockerfile"
    """Dockerfile path relative to the context. Default ``Dockerfile``."""
    platform: Literal["linux/amd64", "linux/arm64"] = "linux/amd64"
    """Target platform; must match the Fargate runtime platform. Default ``linux/amd64``."""


class RegistrySettings(Settings):
    """``trading-infra:registry``: the ECR repository and the image the service runs."""

    repository_name: Annotated[
        str, Field(pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
    ] = "trading-api"
    """ECR repository name (lower case). Default ``trading-api``."""
    build: BuildSettings | None = None
    """Build the image from a context. Default: build ``app/`` when ``imageUri`` is unset."""
    image_uri: Annotated[str, Field(pattern=r"^[^@\s]+@sha256:[0-9a-f]{64}$")] | None = None
    """A prebuilt image pinned by digest (``repo@sha256:…``) instead of a build."""
    keep_last_images: Annotated[int, Field(ge=1, le=1000)] = 30
    """Tagged images the lifecycle policy keeps. Default 30."""
    untagged_expiry_days: Annotated[int, Field(ge=1, le=365)] = 7
    """Days after which untagged images expire. Default 7."""
    kms_key_arn: Annotated[str, Field(pattern=r"^arn:aws[\w-]*:kms:")] | None = None
    """Encrypt the repository with this customer-managed KMS key. Default AES-256."""

    @model_validator(mode="after")
    def _one_image_source(self) -> RegistrySettings:
        if self.build is not None and self.image_uri is not None:
            raise ValueError(
                "build and imageUri are both set; keep build to build the image here, "
                "or imageUri to run a prebuilt one"
            )
        return self

    @property
    def image_build(self) -> BuildSettings | None:
        """The build to run, or None when a prebuilt image is configured."""
        if self.image_uri is not None:
            return None
        return self.build or BuildSettings()


class ContainerRegistry(pulumi.ComponentResource):
    """An ECR repository (scan on push, immutable tags, lifecycle policy) and an image.

    ``image_ref`` is always ``repository@sha256:…``: ECS pulls exactly the image that was
    built (or configured), never whatever a tag points at later.
    """

    repository: aws.ecr.Repository
    """The ECR repository."""
    repository_url: pulumi.Output[str]
    """The repository URL (``account.dkr.ecr.region.amazonaws.com/name``)."""
    repository_arn: pulumi.Output[str]
    """The repository ARN, for the task execution role's pull permission."""
    image: docker.Image | None
    """The built image, or None when a prebuilt ``image_uri`` is used."""
    image_ref: pulumi.Output[str]
    """The image to run, by digest."""

    def __init__(
        self,
        name: str,
        settings: RegistrySettings,
        *,
        root: Path = Path(),
        protect: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``root``: what the build context is relative to. ``protect``: protect the
        repository from deletion."""
        super().__init__("trading-infra:registry:ContainerRegistry", name, {}, opts)
        build = settings.image_build
        tags = component_tags("registry")
        kms_key_arn = settings.kms_key_arn

        self.repository = aws.ecr.Repository(
            f"{name}-repo",
            name=settings.repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(
                    encryption_type="KMS" if kms_key_arn else "AES256",
                    kms_key=kms_key_arn,
                )
            ],
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=self.repository.name,
            policy=lifecycle_policy(settings.keep_last_images, settings.untagged_expiry_days),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.repository_url = self.repository.repository_url
        self.repository_arn = self.repository.arn

        if build is not None:
            self.image = self._build(name, build, root)
            self.image_ref = self.image.repo_digest
        else:
            self.image = None
            self.image_ref = pulumi.Output.from_input(str(settings.image_uri))

        self.register_outputs({"repository_url": self.repository_url, "image_ref": self.image_ref})

    def _build(self, name: str, build: BuildSettings, root: Path) -> docker.Image:
        context = root / build.context
        dockerfile = context / build.dockerfile
        platform = build.platform
        tag = image_digest(context, dockerfile, platform)[:16]
        token = aws.ecr.get_authorization_token_output(
            registry_id=self.repository.registry_id,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        return docker.Image(
            f"{name}-image",
            image_name=self.repository.repository_url.apply(lambda url: f"{url}:{tag}"),
            build=docker.DockerBuildArgs(
                context=str(context),
                dockerfile=str(dockerfile),
                platform=platform,
            ),
            registry=docker.RegistryArgs(
                server=self.repository.repository_url,
                username=token.user_name,
                password=pulumi.Output.secret(token.password),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
