"""ContainerRegistry: an ECR repository and the image the service runs, by digest."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from pathlib import Path
from typing import Required, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

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
    ignore_file = context / ".dockerignore"
    if not ignore_file.is_file():
        return []
    lines = (line.strip() for line in ignore_file.read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def context_digest(context: Path) -> str:
    """SHA-256 over the build context's files (paths and contents), minus .dockerignore.

    Used as the image tag: the repository's tags are immutable, so a new build needs a
    new tag, and an unchanged context must keep its tag so nothing is rebuilt.
    """
    patterns = _ignore_patterns(context)
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        relative = path.relative_to(context).as_posix()
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes for pattern in patterns):
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class ImageBuildArgs(TypedDict, total=False):
    """How ``ContainerRegistry`` builds its image."""

    context: Required[str]
    """Build context directory. Required."""
    dockerfile: str
    """Dockerfile path relative to the context. Default ``Dockerfile``."""
    platform: str
    """Target platform. Default ``linux/amd64``."""


class ContainerRegistryArgs(TypedDict, total=False):
    """Arguments of ``ContainerRegistry``. Exactly one of ``build`` and ``image_uri``."""

    repository_name: Required[str]
    """ECR repository name. Required."""
    build: ImageBuildArgs
    """Build this context with pulumi-docker and push it to the repository."""
    image_uri: str
    """A prebuilt image pinned by digest, used as is."""
    keep_last_images: int
    """Tagged images the lifecycle policy keeps. Default 30."""
    untagged_expiry_days: int
    """Days before untagged images expire. Default 7."""
    kms_key_arn: str
    """Customer-managed KMS key for the repository. Default AES-256 (AWS-owned key)."""
    protect: bool
    """Protect the repository from deletion. Default False."""


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
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("trading-infra:registry:ContainerRegistry", name, {}, opts)
        build, image_uri = args.get("build"), args.get("image_uri")
        if (build is None) == (image_uri is None):
            raise ValueError(
                f"ContainerRegistry {name}: exactly one of `build` or `image_uri` must be given."
            )
        if image_uri is not None and "@sha256:" not in image_uri:
            raise ValueError(f"ContainerRegistry {name}: image_uri must be pinned by digest.")
        tags = component_tags("registry")
        kms_key_arn = args.get("kms_key_arn")

        self.repository = aws.ecr.Repository(
            f"{name}-repo",
            name=args["repository_name"],
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
            opts=pulumi.ResourceOptions(parent=self, protect=args.get("protect", False)),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=self.repository.name,
            policy=lifecycle_policy(
                args.get("keep_last_images", 30), args.get("untagged_expiry_days", 7)
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.repository_url = self.repository.repository_url
        self.repository_arn = self.repository.arn

        if build is not None:
            self.image = self._build(name, build)
            self.image_ref = self.image.repo_digest
        else:
            self.image = None
            self.image_ref = pulumi.Output.from_input(str(image_uri))

        self.register_outputs({"repository_url": self.repository_url, "image_ref": self.image_ref})

    def _build(self, name: str, build: ImageBuildArgs) -> docker.Image:
        context = Path(build["context"])
        tag = context_digest(context)[:16]
        token = aws.ecr.get_authorization_token_output(
            registry_id=self.repository.registry_id,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        return docker.Image(
            f"{name}-image",
            image_name=self.repository.repository_url.apply(lambda url: f"{url}:{tag}"),
            build=docker.DockerBuildArgs(
                context=str(context),
                dockerfile=str(context / build.get("dockerfile", "Dockerfile")),
                platform=build.get("platform", "linux/amd64"),
            ),
            registry=docker.RegistryArgs(
                server=self.repository.repository_url,
                username=token.user_name,
                password=pulumi.Output.secret(token.password),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
