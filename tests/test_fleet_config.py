"""The vps stack's config: hosts, mesh, admin networks, pinned host keys and images."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest

from components.compose import ROLES
from components.hosts import FLEET_ROLES, Role
from stacks.config import ConfigError, FleetStackConfig, parse_stack_config
from stacks.fleet import services_of
from tests.support import committed_config

SECRETS = [
    "trading-infra:sshPrivateKey",
    "trading-infra:grafanaAdminPassword",
    "trading-infra:questdbPassword",
    "trading-infra:backupPassword",
]
VPS = {
    **committed_config("vps"),
    "trading-infra:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----",
    "trading-infra:grafanaAdminPassword": "s3cret",
    "trading-infra:questdbPassword": "qu3st",
    "trading-infra:backupPassword": "r3stic",
}
FLEET: dict[str, Any] = {
    key: value
    for key, value in json.loads(VPS["trading-infra:fleet"]).items()
    # Names the hosts: the tests that rename one check the rename, not the order
    # (tests/test_rollout.py does).
    if key != "rolloutOrder"
}


def with_fleet(**changes: Any) -> dict[str, str]:
    return {**VPS, "trading-infra:fleet": json.dumps({**FLEET, **changes})}


def with_host(index: int, **changes: Any) -> dict[str, str]:
    hosts = [dict(h) for h in FLEET["hosts"]]
    hosts[index].update(changes)
    hosts[index] = {k: v for k, v in hosts[index].items() if v is not None}
    return with_fleet(hosts=hosts)


def problems(raw: dict[str, str], secret_keys: list[str] = SECRETS) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, "vps", secret_keys)
    return caught.value.problems


def only_problem(raw: dict[str, str]) -> str:
    found = problems(raw)
    assert len(found) == 1, found
    return found[0]


def test_committed_fleet_is_valid() -> None:
    config = parse_stack_config(VPS, "vps", SECRETS)
    assert isinstance(config, FleetStackConfig)
    assert [h.role for h in config.fleet.hosts] == ["orchestrator", "futures", "equities-crypto"]
    assert all(h.address.startswith("203.0.113.") for h in config.fleet.hosts)


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "cdmx"), ("address", "203.0.113.10"), ("wireguardAddress", "10.99.0.1")],
)
def test_duplicates_are_named_at_the_offending_host(field: str, value: str) -> None:
    assert only_problem(with_host(1, **{field: value})) == (
        f"trading-infra:fleet.hosts[1].{field}: {value!r} is already hosts[0]'s; every host "
        f"needs its own {field}"
    )


@pytest.mark.parametrize("address", ["203.0.113.300", "cdmx.example.com", ""])
def test_host_address_must_be_an_ip_address(address: str) -> None:
    message = only_problem(with_host(0, address=address))
    assert message.startswith(f"trading-infra:fleet.hosts[0].address: {address!r} is not an IP")


def test_jump_host_is_checked_like_a_host() -> None:
    jump = {"address": "bastion.example.com", "hostKey": "ssh-ed25519 AAAA"}
    found = problems(with_fleet(jumpHost=jump))
    assert [p.split(":")[1] for p in found] == ["fleet.jumpHost.address", "fleet.jumpHost.hostKey"]


@pytest.mark.parametrize("address", ["10.98.0.2", "10.99.0.0", "10.99.0.255"])
def test_wireguard_address_outside_the_mesh_is_rejected(address: str) -> None:
    message = only_problem(with_host(1, wireguardAddress=address))
    assert f"host chicago: wireguardAddress {address} is not a host address of meshCidr" in message


def test_missing_host_key_is_rejected() -> None:
    assert only_problem(with_host(0, hostKey=None)) == (
        "trading-infra:fleet.hosts[0].hostKey: required but not set; set it in the stack's "
        "Pulumi.<stack>.yaml"
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("AAAAC3NzaC1lZDI1NTE5AAAAIExWZ5wTt1cYp", "must be an OpenSSH public host key"),
        ("ssh-dss AAAAB3NzaC1kc3M=", "must be an OpenSSH public host key"),
        ("ssh-ed25519 not*base64", "is not valid base64"),
        # An RSA blob labelled ed25519: the blob names its own type.
        ("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ==", "blob is not a ssh-ed25519 key"),
        # The right type name, then a key cut short: only a full parse sees it.
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExWZ5wTt1cYp+b2tSgu4b3K", "is not a valid"),
        ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY=", "not a valid"),
    ],
)
def test_malformed_host_key_is_rejected(key: str, expected: str) -> None:
    message = only_problem(with_host(2, hostKey=key))
    assert message.startswith("trading-infra:fleet.hosts[2].hostKey: ")
    assert expected in message


def test_a_role_with_no_host_is_rejected() -> None:
    hosts = [h for h in FLEET["hosts"] if h["role"] != "futures"]
    assert "no host has role futures; every role needs one" in only_problem(with_fleet(hosts=hosts))


def test_two_orchestrators_are_rejected() -> None:
    assert any(
        "more than one orchestrator" in p for p in problems(with_host(1, role="orchestrator"))
    )


@pytest.mark.parametrize(
    ("cidrs", "world"),
    [
        (["0.0.0.0/0"], "0.0.0.0/0"),
        (["::/0"], "::/0"),
        # The internet in pieces is the internet.
        (["0.0.0.0/1", "128.0.0.0/1"], "0.0.0.0/0"),
        (["198.51.100.0/24", "0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"], "0.0.0.0/0"),
        (["::/1", "8000::/1"], "::/0"),
    ],
)
def test_ssh_from_anywhere_needs_an_explicit_choice(cidrs: list[str], world: str) -> None:
    message = only_problem(with_fleet(adminCidrs=cidrs))
    assert f"adminCidrs cover {world} together: SSH would be open to the whole" in message
    accepted = parse_stack_config(
        with_fleet(adminCidrs=cidrs, allowSshFromAnywhere=True), "vps", SECRETS
    )
    assert isinstance(accepted, FleetStackConfig)


def test_admin_cidr_must_be_a_network() -> None:
    message = only_problem(with_fleet(adminCidrs=["198.51.100.7/24"]))
    assert message.startswith("trading-infra:fleet.adminCidrs: '198.51.100.7/24' is not a network")


def test_mesh_must_be_a_private_24() -> None:
    message = only_problem(with_fleet(meshCidr="10.99.0.0/16"))
    assert message.startswith("trading-infra:fleet.meshCidr: 10.99.0.0/16 is a /16")


def with_images(**changes: str) -> dict[str, str]:
    return with_fleet(images={**FLEET["images"], **changes})


def test_images_must_be_pinned_by_digest_each_named_at_its_key() -> None:
    digest = "0" * 64
    found = problems(
        with_images(
            redis="redis:7.4.2-alpine",  # a tag moves
            grafana="grafana/grafana:latest",
            questdb=f"questdb/questdb@sha256:{digest[:63]}",  # truncated
        )
    )
    assert sorted(p.split(":", 2)[1] for p in found) == [
        "fleet.images.grafana",
        "fleet.images.questdb",
        "fleet.images.redis",
    ]
    assert any("docker buildx imagetools inspect redis:7.4.2-alpine" in p for p in found)


def test_a_digest_with_or_without_a_tag_or_a_registry_port_is_accepted() -> None:
    digest = "a1" * 32
    for image in (
        f"redis@sha256:{digest}",
        f"redis:7.4.2-alpine@sha256:{digest}",
        f"registry.example.com:5000/team/api-gateway:1.2.3@sha256:{digest}",
    ):
        parse_stack_config(with_images(redis=image), "vps", SECRETS)


def test_the_platform_images_have_no_default() -> None:
    images = {k: v for k, v in FLEET["images"].items() if k != "apiGateway"}
    message = only_problem(with_fleet(images=images))
    assert message.startswith("trading-infra:fleet.images.apiGateway: required")


def test_a_registry_needs_its_pull_token_on_a_real_deploy_and_a_token_needs_a_registry() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(VPS, "vps", SECRETS, check_artifacts=True)
    assert any(
        p.startswith("trading-infra:registryPullToken: the hosts cannot pull from ghcr.io")
        for p in caught.value.problems
    )
    without = {k: v for k, v in FLEET.items() if k != "registry"}
    raw = {
        **VPS,
        "trading-infra:fleet": json.dumps(without),
        "trading-infra:registryPullToken": "ghp_token",
    }
    found = problems(raw, secret_keys=[*SECRETS, "trading-infra:registryPullToken"])
    assert found == [
        "trading-infra:registryPullToken: there is no fleet.registry to log in to; set "
        "fleet.registry {server, username} or remove the token"
    ]


def test_secrets_must_be_set_encrypted() -> None:
    found = problems(VPS, secret_keys=[])
    assert found == [
        "trading-infra:backupPassword: is stored in plain text; remove it from the stack "
        "file and set it with `pulumi config set --secret`",
        "trading-infra:grafanaAdminPassword: is stored in plain text; remove it from the stack "
        "file and set it with `pulumi config set --secret`",
        "trading-infra:questdbPassword: is stored in plain text; remove it from the stack file "
        "and set it with `pulumi config set --secret`",
        "trading-infra:sshPrivateKey: is stored in plain text; remove it from the stack file and "
        "set it with `pulumi config set --secret`",
    ]


def test_half_the_internet_is_not_the_internet() -> None:
    config = parse_stack_config(with_fleet(adminCidrs=["0.0.0.0/1", "128.0.0.0/2"]), "vps", SECRETS)
    assert isinstance(config, FleetStackConfig)


def test_every_fleet_wide_problem_is_reported_together() -> None:
    twin = {**FLEET["hosts"][1], "role": "equities-crypto"}
    raw = with_fleet(adminCidrs=["0.0.0.0/0"], hosts=[FLEET["hosts"][0], FLEET["hosts"][1], twin])
    found = problems(raw)
    assert [p.split(":")[1] for p in found] == [
        "fleet.hosts[2].address",
        "fleet.hosts[2].name",
        "fleet.hosts[2].wireguardAddress",
        "fleet",
    ]
    assert "open to the whole internet" in found[-1]


def test_broker_credentials_are_a_secret_for_brokers_the_fleet_uses() -> None:
    credentials = {"binance": {"apiKey": "k"}, "binanse": {"apiKey": "k"}}
    raw = {**VPS, "trading-infra:brokerCredentials": json.dumps(credentials)}
    key = "trading-infra:brokerCredentials"
    assert problems(raw, [*SECRETS, key]) == [
        f"{key}.binanse: no role trades with or collects from 'binanse'; use one of alpaca, "
        "binance, bybit-futures, bybit-spot, cboe, cme, coinbase, coingecko, "
        "interactive-brokers, polygon, tiingo, tradestation"
    ]
    assert any(p.startswith(f"{key}: is stored in plain text") for p in problems(raw))


def test_a_real_deploy_needs_credentials_for_every_broker() -> None:
    raw = {**VPS, "trading-infra:brokerCredentials": json.dumps({"binance": {"apiKey": "k"}})}
    secret_keys = [*SECRETS, "trading-infra:brokerCredentials"]
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(raw, "vps", secret_keys, check_artifacts=True)
    missing = [
        key
        for key in (p.split(":")[1].split(" ")[0] for p in raised.value.problems)
        if key.startswith("brokerCredentials.")
    ]
    assert "brokerCredentials.binance" not in missing
    assert "brokerCredentials.tradestation" in missing and len(missing) == 6


def test_the_config_accepts_exactly_the_roles_of_the_roles_table() -> None:
    """A role added to ``components.compose.ROLES`` must be a config value too (and one
    removed must stop being one); the literal exists only to give the schema its enum."""
    assert get_args(Role) == tuple(ROLES)
    assert tuple(ROLES) == FLEET_ROLES


def test_markets_are_configured_per_execution_role_each_named_at_its_key() -> None:
    roles = {**FLEET["roles"], "orchestrator": {"brokers": ["binance"]}}
    del roles["futures"]
    found = problems(with_fleet(roles=roles))
    assert sorted(found) == [
        "trading-infra:fleet.roles.futures: its node needs its brokers and dataProviders; add them",
        "trading-infra:fleet.roles.orchestrator: not an execution role (brokers and data "
        "providers belong to futures, equities-crypto); remove it",
    ]


def test_each_roles_markets_reach_its_own_hosts_env_only() -> None:
    roles = {
        "futures": {"brokers": ["tradestation"], "dataProviders": ["cme"]},
        "equities-crypto": {"brokers": ["binance"]},
    }
    config = parse_stack_config(with_fleet(roles=roles), "vps", SECRETS)
    assert isinstance(config, FleetStackConfig)
    services = services_of(config)
    assert services.brokers == {"futures": ["tradestation"], "equities-crypto": ["binance"]}
    assert services.data_providers == {"futures": ["cme"], "equities-crypto": []}


def with_backup(**changes: Any) -> dict[str, str]:
    backup = {**FLEET["backup"], **changes}
    return with_fleet(backup={k: v for k, v in backup.items() if v is not None})


def test_bad_backup_config_is_rejected_naming_each_key() -> None:
    found = problems(
        with_backup(
            bucketRegion=None,
            intervalMinutes=10,
            rpoMinutes=5,
            retention={"keepHourly": 0, "keepDaily": 30, "keepMonthly": 12},
        )
    )
    key = "trading-infra:fleet.backup"
    assert f"{key}.bucketRegion: required but not set" in "\n".join(found)
    assert any(p.startswith(f"{key}.retention.keepHourly: ") for p in found)
    # The schedule check runs once the fields are valid: alone, it names its key too.
    assert only_problem(with_backup(intervalMinutes=10, rpoMinutes=5)) == (
        f"{key}.intervalMinutes: 10 minutes between backups cannot meet rpoMinutes 5; back "
        "up at least every 5 minutes"
    )
    assert only_problem(with_backup(objectLockDays=90, noncurrentExpiryDays=60)).startswith(
        f"{key}.noncurrentExpiryDays: 60 is shorter than objectLockDays 90"
    )
    assert only_problem(with_backup(bucketRegion="Oregon")).startswith(f"{key}.bucketRegion: ")
