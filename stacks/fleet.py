"""The ``vps`` stack (role ``vps-fleet``): composition only.

Every host is bootstrapped and generates its WireGuard key; once all keys exist, each
host joins the mesh with its peers' keys and deploys its role's services, one host at
a time in ``fleet.rolloutOrder`` (each after the previous host's health check).
"""

from __future__ import annotations

import dataclasses

import pulumi
import pulumi_aws as aws

from components.alerting import alert_rules, alertmanager_config, receiver_variable
from components.backup import BackupBucket, backup_env
from components.compose import (
    FleetServices,
    MonitoredHost,
    credential_variable,
    env_values,
    ilp_auth_file,
    render_compose,
    render_env,
)
from components.settings import camel
from components.vps import HostBackup, MeshSpec, VpsHost, env_digest, sha256
from stacks import outputs
from stacks.config import FleetStackConfig
from stacks.project import default_tags


def mesh_of(config: FleetStackConfig) -> MeshSpec:
    fleet = config.fleet
    return MeshSpec(
        cidr=fleet.mesh_cidr,
        port=fleet.wireguard_port,
        admin_cidrs=tuple(fleet.admin_cidrs),
        jump_host=fleet.jump_host,
        drift_public_key=fleet.drift_public_key,
        hosts=tuple(fleet.hosts),
    )


def services_of(config: FleetStackConfig) -> FleetServices:
    fleet = config.fleet
    # Each role is served by its first host (config allows more for spares).
    by_role: dict[str, str] = {}
    for host in fleet.hosts:
        by_role.setdefault(host.role, host.wireguard_address)
    return FleetServices(
        images=fleet.images.model_dump(),
        wireguard_addresses=by_role,
        brokers={role: markets.brokers for role, markets in fleet.roles.items()},
        data_providers={role: markets.data_providers for role, markets in fleet.roles.items()},
        credentials={name: sorted(keys) for name, keys in config.broker_credentials.items()},
        hosts=[MonitoredHost(h.name, h.role, h.wireguard_address) for h in fleet.hosts],
        alert_rules=alert_rules(fleet.alerting, fleet.backup.interval_minutes),
        alertmanager=alertmanager_config(fleet.alerting),
        alert_variables=[receiver_variable(fleet.alerting)],
    )


def env_secrets(config: FleetStackConfig) -> dict[str, str]:
    """Every secret a host's .env may carry, by variable name."""
    secrets = {
        "GRAFANA_ADMIN_PASSWORD": config.grafana_admin_password,
        "QUESTDB_PG_PASSWORD": config.questdb_password,
    }
    if config.alert_receiver_secret:
        secrets[receiver_variable(config.fleet.alerting)] = config.alert_receiver_secret
    for provider, keys in config.broker_credentials.items():
        secrets |= {credential_variable(provider, key): value for key, value in keys.items()}
    return secrets


def _backups(config: FleetStackConfig, mesh: MeshSpec) -> dict[str, HostBackup]:
    """The backup bucket, in its own region through an explicit provider, and each
    host's wiring to its part of it."""
    settings = config.fleet.backup
    provider = aws.Provider(
        f"aws-{settings.bucket_region}",
        region=settings.bucket_region,
        default_tags=aws.ProviderDefaultTagsArgs(
            tags=default_tags(pulumi.get_stack(), settings.bucket_region)
        ),
    )
    bucket = BackupBucket(
        "backups",
        settings,
        hosts=[spec.name for spec in mesh.hosts],
        protect=config.production,
        opts=pulumi.ResourceOptions(provider=provider),
    )
    password = pulumi.Output.secret(config.backup_password)
    backups = {}
    for name, credentials in bucket.credentials.items():
        env = pulumi.Output.all(
            credentials.repository,
            credentials.access_key_id,
            credentials.secret_access_key,
            password,
        ).apply(lambda values: backup_env(*values))
        backups[name] = HostBackup(env=pulumi.Output.secret(env), settings=settings)
    pulumi.export(outputs.BACKUP_BUCKET, bucket.bucket.bucket)
    pulumi.export(outputs.BACKUP_REGION, settings.bucket_region)
    pulumi.export(outputs.BACKUP_RPO_MINUTES, settings.rpo_minutes)
    return backups


def build_fleet(config: FleetStackConfig) -> None:
    mesh = mesh_of(config)
    backups = _backups(config, mesh)
    services = services_of(config)
    secrets = env_secrets(config)
    registry = config.fleet.registry
    env_files = {
        spec.name: render_env(env_values(spec.role, services, secrets)) for spec in mesh.hosts
    }
    hosts = [
        VpsHost(
            spec.name,
            spec,
            mesh=mesh,
            private_key=pulumi.Output.secret(config.ssh_private_key),
            env_file=pulumi.Output.secret(env_files[spec.name]),
            health_timeout_seconds=config.fleet.health_timeout_seconds,
            protect=config.production,
            registry=registry,
            registry_token=pulumi.Output.secret(config.registry_pull_token),
            backup=backups[spec.name],
        )
        for spec in mesh.hosts
    ]
    public_keys = {
        spec.name: host.wireguard_public_key for spec, host in zip(mesh.hosts, hosts, strict=True)
    }
    # The orchestrator's QuestDB admits the writers whose keys the hosts generated.
    ilp_auth = pulumi.Output.all(
        *(host.ilp_public_key for host in hosts if host.ilp_public_key is not None)
    ).apply(ilp_auth_file)
    # One host at a time, in rollout order: each deploys once the previous one's
    # health check passed, so a failing canary leaves the rest on what they run.
    by_name = {spec.name: host for spec, host in zip(mesh.hosts, hosts, strict=True)}
    previous: pulumi.Resource | None = None
    for spec in config.fleet.rollout:
        own = dataclasses.replace(services, images=config.fleet.images_of(spec))
        compose: pulumi.Input[str] = (
            ilp_auth.apply(
                lambda auth, spec=spec, own=own: render_compose(
                    spec.role, spec.wireguard_address, own, auth
                )
            )
            if spec.role == "orchestrator"
            else render_compose(spec.role, spec.wireguard_address, own)
        )
        host = by_name[spec.name]
        host.deploy(public_keys, compose, after=previous)
        previous = host.health

    pulumi.export(
        outputs.FLEET_HOSTS,
        {
            spec.name: {
                "role": spec.role,
                "address": spec.address,
                "wireguardAddress": spec.wireguard_address,
                "sshPort": spec.ssh_port,
                "sshUser": spec.ssh_user,
                "hostKey": spec.host_key,
            }
            for spec in mesh.hosts
        },
    )
    pulumi.export(
        outputs.FLEET_JUMP_HOST,
        {
            "address": mesh.jump_host.address,
            "port": mesh.jump_host.port,
            "user": mesh.jump_host.user,
            "hostKey": mesh.jump_host.host_key,
        }
        if mesh.jump_host
        else None,
    )
    if config.drift_digest_key:
        pulumi.export(
            outputs.FLEET_ENV_DIGESTS,
            {
                name: env_digest(config.drift_digest_key, sha256(text))
                for name, text in env_files.items()
            },
        )
    pulumi.export(outputs.FLEET_ROLLOUT, [spec.name for spec in config.fleet.rollout])
    pulumi.export(
        outputs.FLEET_IMAGES,
        {
            spec.name: {camel(key): image for key, image in config.fleet.images_of(spec).items()}
            for spec in mesh.hosts
        },
    )
    pulumi.export(outputs.MESH_CIDR, mesh.cidr)
    pulumi.export(outputs.WIREGUARD_PUBLIC_KEYS, public_keys)
