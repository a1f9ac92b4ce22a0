"""The ``vps`` stack (role ``vps-fleet``): composition only.

Every host is bootstrapped and generates its WireGuard key; once all keys exist, each
host joins the mesh with its peers' keys and deploys its role's services.
"""

from __future__ import annotations

import pulumi

from components.compose import FleetServices, render_compose, render_env
from components.vps import HostSpec, MeshSpec, VpsHost, VpsHostArgs
from stacks import outputs
from stacks.config import FleetStackConfig


def mesh_of(config: FleetStackConfig) -> MeshSpec:
    fleet = config.fleet
    return MeshSpec(
        cidr=fleet.mesh_cidr,
        port=fleet.wireguard_port,
        admin_cidrs=tuple(fleet.admin_cidrs),
        hosts=tuple(
            HostSpec(
                name=h.name,
                role=h.role,
                address=h.address,
                ssh_port=h.ssh_port,
                ssh_user=h.ssh_user,
                host_key=h.host_key,
                wireguard_address=h.wireguard_address,
            )
            for h in fleet.hosts
        ),
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
        brokers={
            "futures": fleet.futures_brokers,
            "equities-crypto": fleet.equities_crypto_brokers,
        },
        data_providers={
            "futures": fleet.futures_data_providers,
            "equities-crypto": fleet.equities_crypto_data_providers,
        },
    )


def build_fleet(config: FleetStackConfig) -> None:
    mesh = mesh_of(config)
    services = services_of(config)
    env_secrets = {"GRAFANA_ADMIN_PASSWORD": config.grafana_admin_password}
    hosts = [
        VpsHost(
            spec.name,
            VpsHostArgs(
                host=spec,
                mesh=mesh,
                private_key=pulumi.Output.secret(config.ssh_private_key),
                compose_file=render_compose(spec.role, spec.wireguard_address, services),
                env_file=pulumi.Output.secret(render_env(spec.role, env_secrets)),
                health_timeout_seconds=config.fleet.health_timeout_seconds,
                protect=config.production,
            ),
        )
        for spec in mesh.hosts
    ]
    public_keys = {
        spec.name: host.wireguard_public_key for spec, host in zip(mesh.hosts, hosts, strict=True)
    }
    for host in hosts:
        host.deploy(public_keys)

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
    pulumi.export(outputs.MESH_CIDR, mesh.cidr)
    pulumi.export(outputs.WIREGUARD_PUBLIC_KEYS, public_keys)
