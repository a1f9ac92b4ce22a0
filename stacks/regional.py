"""The regional backend stack (roles ``primary`` and ``fallback``): composition only."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.network import Network, NetworkArgs
from components.registry import ContainerRegistry, ContainerRegistryArgs
from stacks import outputs
from stacks.config import PROJECT, RegionalStackConfig


def default_tags(stack: str, region: str) -> dict[str, str]:
    """Tags the stack's provider puts on every taggable resource."""
    return {"project": PROJECT, "stack": stack, "region": region, "managed-by": "pulumi"}


def regional_provider(config: RegionalStackConfig) -> aws.Provider:
    """The explicit provider every resource of the stack is created through."""
    stack = pulumi.get_stack()
    return aws.Provider(
        f"aws-{config.region}",
        region=config.region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=default_tags(stack, config.region)),
    )


def build_regional(config: RegionalStackConfig) -> None:
    """Network -> ContainerRegistry in the stack's region; exports their ids."""
    provider = regional_provider(config)
    opts = pulumi.ResourceOptions(providers=[provider])
    net = config.network
    network = Network(
        "network",
        NetworkArgs(
            cidr=net.cidr,
            az_count=net.az_count,
            private_subnet_prefix=net.private_subnet_prefix,
            public_subnet_prefix=net.public_subnet_prefix,
            nat=net.nat,
            flow_log_retention_days=net.flow_log_retention_days,
            endpoints=list(net.endpoints),
            protect=config.production,
        ),
        opts=opts,
    )

    reg = config.registry
    registry_args = ContainerRegistryArgs(
        repository_name=reg.repository_name,
        keep_last_images=reg.keep_last_images,
        untagged_expiry_days=reg.untagged_expiry_days,
        protect=config.production,
    )
    if reg.kms_key_arn:
        registry_args["kms_key_arn"] = reg.kms_key_arn
    build = reg.image_build
    if build is not None:
        registry_args["build"] = {
            "context": build.context,
            "dockerfile": build.dockerfile,
            "platform": build.platform,
        }
    else:
        registry_args["image_uri"] = str(reg.image_uri)
    registry = ContainerRegistry("registry", registry_args, opts=opts)

    pulumi.export(outputs.REGION, config.region)
    pulumi.export(outputs.VPC_ID, network.vpc_id)
    pulumi.export(outputs.VPC_CIDR, net.cidr)
    pulumi.export(outputs.PUBLIC_SUBNET_IDS, network.public_subnet_ids)
    pulumi.export(outputs.PRIVATE_SUBNET_IDS, network.private_subnet_ids)
    pulumi.export(outputs.REPOSITORY_URL, registry.repository_url)
    pulumi.export(outputs.IMAGE_REF, registry.image_ref)
