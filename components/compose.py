"""The VPS fleet's docker-compose files, one per role, rendered by pure functions.

Every service: an image pinned by version, a health check, a restart policy, a memory
limit, log rotation, ``no-new-privileges``; never ``privileged``, never the Docker socket.
Published ports bind to the host's WireGuard address (reached by the other hosts over
the mesh) or to 127.0.0.1, never to 0.0.0.0: Docker's published ports bypass ufw.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

PROJECT_NAME = "trading-infra"

TRADING_PORT = 5001
MARKET_DATA_PORT = 5002
GATEWAY_PORT = 5000
QUESTDB_HTTP_PORT = 9000
QUESTDB_ILP_PORT = 9009
BACKTESTING_PORT = 5003
ML_SERVICE_PORT = 5004
NODE_EXPORTER_PORT = 9100
ALERTMANAGER_PORT = 9093
PROMETHEUS_PORT = 9090
METRICS_DIR = "/var/lib/trading-infra/metrics"
"""The node exporter's textfile directory on each host: every ``*.prom`` in it is
served (``components/alerting.py`` says what writes them)."""


@dataclass(frozen=True)
class RoleSpec:
    """What a fleet role is: which compose file it runs and who may reach it."""

    kind: Literal["orchestrator", "execution"]
    """``orchestrator``: the gateway, QuestDB and the analytics services (one host).
    ``execution``: a trading service and a market-data collector next to its venues."""
    mesh_ports: tuple[int, ...]
    """Ports published on the host's WireGuard address."""
    images: tuple[str, ...]
    """The images its compose file runs, by key of ``fleet.images`` (snake case): the
    ones a host of the role may override (``fleet.hosts[i].images``)."""


ROLES: dict[str, RoleSpec] = {
    # The execution nodes call the gateway (the planning notes' PRIMARY_GATEWAY) and
    # write ticks to QuestDB over ILP; QuestDB's HTTP console and PG wire stay local.
    "orchestrator": RoleSpec(
        "orchestrator",
        (GATEWAY_PORT, QUESTDB_ILP_PORT),
        (
            "api_gateway",
            "backtesting",
            "ml_service",
            "questdb",
            "redis",
            "prometheus",
            "grafana",
            "alertmanager",
            "node_exporter",
        ),
    ),
    # The orchestrator's gateway routes orders and data requests; its Prometheus scrapes.
    # ... and scrapes their node exporters.
    "futures": RoleSpec(
        "execution",
        (TRADING_PORT, MARKET_DATA_PORT, NODE_EXPORTER_PORT),
        ("trading_service", "market_data", "redis", "node_exporter"),
    ),
    "equities-crypto": RoleSpec(
        "execution",
        (TRADING_PORT, MARKET_DATA_PORT, NODE_EXPORTER_PORT),
        ("trading_service", "market_data", "redis", "node_exporter"),
    ),
}
"""The fleet's roles as data: every other table of roles is derived from this one."""

EXECUTION_ROLES = tuple(role for role, spec in ROLES.items() if spec.kind == "execution")
ORCHESTRATOR_ROLES = tuple(role for role, spec in ROLES.items() if spec.kind == "orchestrator")

MESH_CLIENTS: dict[str, dict[int, tuple[str, ...]]] = {
    role: {
        port: EXECUTION_ROLES if spec.kind == "orchestrator" else ORCHESTRATOR_ROLES
        for port in spec.mesh_ports
    }
    for role, spec in ROLES.items()
}
"""Per role, each port published on the WireGuard address and the roles that may open
it: ufw and ``DOCKER-USER`` admit exactly these peers, on ``wg0`` only. The
orchestrator is reached by the execution roles, they by the orchestrator."""

MESH_PORTS: dict[str, tuple[int, ...]] = {
    role: tuple(clients) for role, clients in MESH_CLIENTS.items()
}
"""Ports each role publishes on its WireGuard address."""


@dataclass(frozen=True)
class MonitoredHost:
    """A host as Prometheus scrapes it."""

    name: str
    role: str
    wireguard_address: str


@dataclass(frozen=True)
class FleetServices:
    """What the compose files need to know about the fleet."""

    images: Mapping[str, str]
    """Image by service key (api_gateway, questdb, ...)."""
    wireguard_addresses: Mapping[str, str]
    """WireGuard address by role (one host per role is routed to)."""
    brokers: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Brokers by execution role."""
    data_providers: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Market data providers by execution role."""
    credentials: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Credential names (``apiKey``...) by broker or data provider: the services that
    talk to it read them from the host's .env."""
    hosts: Sequence[MonitoredHost] = ()
    """Every host, for Prometheus to scrape over the mesh."""
    alert_rules: str = ""
    """Prometheus' alerting rules (``components.alerting.alert_rules``)."""
    alertmanager: str = ""
    """Alertmanager's config, its secret as ``${VARIABLE}`` from the .env
    (``components.alerting.alertmanager_config``)."""
    alert_variables: Sequence[str] = ()
    """The .env variables Alertmanager's config takes (the receiver's secret)."""

    def variables(self, providers: Sequence[str]) -> list[str]:
        """The .env variables of ``providers``' credentials."""
        return [
            credential_variable(provider, key)
            for provider in providers
            for key in self.credentials.get(provider, ())
        ]


def credential_variable(provider: str, key: str) -> str:
    """``binance``, ``apiKey`` -> ``BINANCE_API_KEY``."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key)
    return f"{provider}_{snake}".replace("-", "_").upper()


def env_reference(name: str) -> str:
    """``${NAME:?...}``: Compose fills it in from the .env the deploy installs (a Pulumi
    secret), and refuses to start without it: no default."""
    return f"${{{name}:?set by the deploy}}"


def _from_env(variables: Sequence[str]) -> dict[str, str]:
    return {name: env_reference(name) for name in variables}


def _service(
    image: str,
    *,
    health: list[str],
    memory: str,
    ports: Sequence[str] = (),
    environment: Mapping[str, str] | None = None,
    volumes: Sequence[str] = (),
    own_image: bool = False,
    depends_on: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    service: dict[str, Any] = {
        "image": image,
        "restart": "unless-stopped",
        "mem_limit": memory,
        "security_opt": ["no-new-privileges:true"],
        "logging": {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}},
        "healthcheck": {
            "test": health,
            "interval": "15s",
            "timeout": "5s",
            "retries": 5,
            "start_period": "30s",
        },
    }
    if own_image:
        # The platform's own services need no capability and write only to /tmp.
        service |= {"cap_drop": ["ALL"], "read_only": True, "tmpfs": ["/tmp"]}  # noqa: S108
    if ports:
        service["ports"] = list(ports)
    if environment:
        service["environment"] = dict(environment)
    if volumes:
        service["volumes"] = list(volumes)
    if depends_on:
        service["depends_on"] = {name: {"condition": "service_healthy"} for name in depends_on}
    if extra:
        service |= dict(extra)
    return service


def _http_health(port: int) -> list[str]:
    return ["CMD-SHELL", f"curl -fsS http://127.0.0.1:{port}/health || exit 1"]


QUESTDB_PG_USER = "trading"
"""QuestDB's PG-wire user (not the image's default ``admin``/``quest``); its password
is the ``questdbPassword`` secret, in the orchestrator's .env."""
QUESTDB_ILP_AUTH = "/etc/questdb/ilp-auth.txt"
"""Where the questdb container finds the execution nodes' ILP public keys."""
ILP_ENV = "ilp.env"
"""An execution host's own ILP key, written by its ``ilp-key`` step next to the compose
file (root-only); the services that write to QuestDB read it."""


def _questdb_pg() -> dict[str, str]:
    return {
        "QUESTDB_PG": "questdb:8812",
        "QUESTDB_PG_USER": QUESTDB_PG_USER,
        **_from_env(["QUESTDB_PG_PASSWORD"]),
    }


def _analytics(image: str, port: int) -> dict[str, Any]:
    # The orchestrator's own analytics services: reached by the gateway, read QuestDB.
    return _service(
        image,
        health=_http_health(port),
        memory="2g",
        own_image=True,
        ports=[f"127.0.0.1:{port}:{port}"],
        environment=_questdb_pg(),
        depends_on=["questdb"],
    )


def _redis(image: str) -> dict[str, Any]:
    # No published port: the node's services reach it on the compose network only.
    return _service(
        image,
        health=["CMD", "redis-cli", "ping"],
        memory="256m",
        volumes=["redis-data:/data"],
        extra={"command": ["redis-server", "--appendonly", "yes", "--maxmemory", "200mb"]},
    )


PROMETHEUS_RULES = "/etc/prometheus/rules.yml"
ALERTMANAGER_CONFIG = "/etc/alertmanager/alertmanager.yml"


def prometheus_config(
    wireguard_addresses: Mapping[str, str], hosts: Sequence[MonitoredHost] = ()
) -> str:
    """Prometheus scrapes every node's services and node exporter over the mesh (the
    orchestrator's own exporter on the compose network), evaluates the alert rules and
    sends to the local Alertmanager."""
    services = sorted(
        f"{address}:{port}"
        for role, address in wireguard_addresses.items()
        for port in MESH_PORTS[role]
        if port not in (QUESTDB_ILP_PORT, NODE_EXPORTER_PORT)
    )
    nodes = [
        {
            "targets": [
                f"node-exporter:{NODE_EXPORTER_PORT}"
                if ROLES[host.role].kind == "orchestrator"
                else f"{host.wireguard_address}:{NODE_EXPORTER_PORT}"
            ],
            "labels": {"host": host.name, "role": host.role},
        }
        for host in sorted(hosts, key=lambda h: h.name)
    ]
    return yaml.safe_dump(
        {
            "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
            "rule_files": [PROMETHEUS_RULES],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [f"alertmanager:{ALERTMANAGER_PORT}"]}]}
                ]
            },
            "scrape_configs": [
                {
                    "job_name": "prometheus",
                    "static_configs": [{"targets": [f"127.0.0.1:{PROMETHEUS_PORT}"]}],
                },
                {"job_name": "trading", "static_configs": [{"targets": services}]},
                {"job_name": "node", "static_configs": nodes},
            ],
        },
        sort_keys=True,
    )


def _for_compose(text: str) -> str:
    """A file's text as a compose ``configs.content``: Compose interpolates ``$`` there,
    so a literal one is written ``$$`` (the rules' ``$labels``)."""
    return text.replace("$", "$$")


def _node_exporter(image: str, ports: Sequence[str] = ()) -> dict[str, Any]:
    # The textfile collector alone: the fleet's own metrics, and no host filesystem,
    # /proc or /sys mounted into the container.
    return _service(
        image,
        health=["CMD", "wget", "-qO-", f"http://127.0.0.1:{NODE_EXPORTER_PORT}/metrics"],
        memory="64m",
        ports=ports,
        volumes=[f"{METRICS_DIR}:/textfile:ro"],
        extra={
            "command": [
                "--collector.disable-defaults",
                "--collector.textfile",
                "--collector.textfile.directory=/textfile",
                f"--web.listen-address=:{NODE_EXPORTER_PORT}",
            ],
            "user": "65534:65534",
            "cap_drop": ["ALL"],
            "read_only": True,
        },
    )


def ilp_auth_file(public_keys: Sequence[str]) -> str:
    """QuestDB's ILP auth file: one ``KEY_ID ec-p-256-sha256 X Y`` line per writer
    (https://questdb.com/docs/reference/api/ilp/tcp-receiver/#authentication)."""
    lines = sorted(line.strip() for line in public_keys)
    for line in lines:
        parts = line.split()
        if len(parts) != 4 or parts[1] != "ec-p-256-sha256":
            raise ValueError(f"{line!r} is not an ILP auth line (KEY_ID ec-p-256-sha256 X Y)")
    return "".join(f"{line}\n" for line in lines)


def _orchestrator(address: str, fleet: FleetServices, ilp_auth: str) -> dict[str, Any]:
    images = fleet.images
    peers = fleet.wireguard_addresses
    on_mesh = address
    return {
        "services": {
            "api-gateway": _service(
                images["api_gateway"],
                health=_http_health(GATEWAY_PORT),
                memory="512m",
                own_image=True,
                ports=[f"{on_mesh}:{GATEWAY_PORT}:{GATEWAY_PORT}"],
                environment={
                    # Futures to Chicago, equities and crypto to New Jersey, over WireGuard.
                    "FUTURES_TRADING_URL": f"http://{peers['futures']}:{TRADING_PORT}",
                    "FUTURES_DATA_URL": f"http://{peers['futures']}:{MARKET_DATA_PORT}",
                    "EQUITIES_CRYPTO_TRADING_URL": f"http://{peers['equities-crypto']}:{TRADING_PORT}",
                    "EQUITIES_CRYPTO_DATA_URL": f"http://{peers['equities-crypto']}:{MARKET_DATA_PORT}",
                    "BACKTESTING_URL": f"http://backtesting:{BACKTESTING_PORT}",
                    "ML_SERVICE_URL": f"http://ml-service:{ML_SERVICE_PORT}",
                    "REDIS_URL": "redis://redis:6379/0",
                },
                depends_on=["redis"],
            ),
            "backtesting": _analytics(images["backtesting"], BACKTESTING_PORT),
            "ml-service": _analytics(images["ml_service"], ML_SERVICE_PORT),
            "questdb": _service(
                images["questdb"],
                health=["CMD-SHELL", f"bash -c '</dev/tcp/127.0.0.1/{QUESTDB_HTTP_PORT}'"],
                memory="2g",
                # The fleet's single writer: the execution nodes write over the mesh (ILP
                # only); the HTTP console and PG wire are for this host alone.
                ports=[
                    f"127.0.0.1:{QUESTDB_HTTP_PORT}:{QUESTDB_HTTP_PORT}",
                    f"{on_mesh}:{QUESTDB_ILP_PORT}:{QUESTDB_ILP_PORT}",
                    "127.0.0.1:8812:8812",
                ],
                environment={
                    "QDB_TELEMETRY_ENABLED": "false",
                    # ILP over TCP only from the writers whose public key is listed.
                    "QDB_LINE_TCP_AUTH_DB_PATH": QUESTDB_ILP_AUTH,
                    # PG wire: the stack's credentials, never the image's admin/quest.
                    "QDB_PG_USER": QUESTDB_PG_USER,
                    "QDB_PG_PASSWORD": env_reference("QUESTDB_PG_PASSWORD"),
                },
                volumes=["questdb-data:/var/lib/questdb"],
                extra={"configs": [{"source": "questdb-ilp-auth", "target": QUESTDB_ILP_AUTH}]},
            ),
            "redis": _redis(images["redis"]),
            "prometheus": _service(
                images["prometheus"],
                health=["CMD", "wget", "-qO-", f"http://127.0.0.1:{PROMETHEUS_PORT}/-/healthy"],
                memory="512m",
                ports=[f"127.0.0.1:{PROMETHEUS_PORT}:{PROMETHEUS_PORT}"],
                volumes=["prometheus-data:/prometheus"],
                extra={
                    "configs": [
                        {"source": "prometheus", "target": "/etc/prometheus/prometheus.yml"},
                        {"source": "prometheus-rules", "target": PROMETHEUS_RULES},
                    ]
                },
            ),
            "alertmanager": _service(
                images["alertmanager"],
                health=[
                    "CMD",
                    "wget",
                    "-qO-",
                    f"http://127.0.0.1:{ALERTMANAGER_PORT}/-/healthy",
                ],
                memory="128m",
                # For operators through an SSH tunnel; Prometheus uses the compose network.
                ports=[f"127.0.0.1:{ALERTMANAGER_PORT}:{ALERTMANAGER_PORT}"],
                volumes=["alertmanager-data:/alertmanager"],
                extra={"configs": [{"source": "alertmanager", "target": ALERTMANAGER_CONFIG}]},
            ),
            "node-exporter": _node_exporter(images["node_exporter"]),
            "grafana": _service(
                images["grafana"],
                health=["CMD", "wget", "-qO-", "http://127.0.0.1:3000/api/health"],
                memory="512m",
                ports=["127.0.0.1:3000:3000"],
                environment={
                    "GF_SECURITY_ADMIN_USER": "admin",
                    # From the .env the deploy installs (a Pulumi secret); no default.
                    "GF_SECURITY_ADMIN_PASSWORD": env_reference("GRAFANA_ADMIN_PASSWORD"),
                    "GF_USERS_ALLOW_SIGN_UP": "false",
                    "GF_ANALYTICS_REPORTING_ENABLED": "false",
                },
                volumes=["grafana-data:/var/lib/grafana"],
                depends_on=["prometheus"],
            ),
        },
        "volumes": {
            name: {}
            for name in (
                "questdb-data",
                "redis-data",
                "prometheus-data",
                "grafana-data",
                "alertmanager-data",
            )
        },
        "configs": {
            "prometheus": {"content": _for_compose(prometheus_config(peers, fleet.hosts))},
            "prometheus-rules": {"content": _for_compose(fleet.alert_rules)},
            # Its one ${VARIABLE}, the receiver's secret, is filled in from the .env.
            "alertmanager": {"content": fleet.alertmanager},
            "questdb-ilp-auth": {"content": ilp_auth},
        },
    }


def _execution(role: str, address: str, fleet: FleetServices) -> dict[str, Any]:
    images = fleet.images
    questdb = fleet.wireguard_addresses["orchestrator"]
    common = {
        "REDIS_URL": "redis://redis:6379/0",
        "QUESTDB_ILP": f"{questdb}:{QUESTDB_ILP_PORT}",
        "NODE_ROLE": role,
    }
    return {
        "services": {
            "trading-service": _service(
                images["trading_service"],
                health=_http_health(TRADING_PORT),
                memory="1g",
                own_image=True,
                ports=[f"{address}:{TRADING_PORT}:{TRADING_PORT}"],
                environment={
                    **common,
                    "BROKERS": ",".join(fleet.brokers.get(role, ())),
                    **_from_env(fleet.variables(fleet.brokers.get(role, ()))),
                },
                depends_on=["redis"],
                extra={"env_file": [ILP_ENV]},
            ),
            "market-data": _service(
                images["market_data"],
                health=_http_health(MARKET_DATA_PORT),
                memory="1g",
                own_image=True,
                ports=[f"{address}:{MARKET_DATA_PORT}:{MARKET_DATA_PORT}"],
                environment={
                    **common,
                    "DATA_PROVIDERS": ",".join(fleet.data_providers.get(role, ())),
                    **_from_env(fleet.variables(fleet.data_providers.get(role, ()))),
                },
                depends_on=["redis"],
                extra={"env_file": [ILP_ENV]},
            ),
            "redis": _redis(images["redis"]),
            "node-exporter": _node_exporter(
                images["node_exporter"],
                ports=[f"{address}:{NODE_EXPORTER_PORT}:{NODE_EXPORTER_PORT}"],
            ),
        },
        "volumes": {"redis-data": {}},
    }


def render_compose(
    role: str, wireguard_address: str, fleet: FleetServices, ilp_auth: str = ""
) -> str:
    """The role's docker-compose.yml for a host at ``wireguard_address``; the
    orchestrator's takes the ILP auth file (``ilp_auth_file``) of the writers."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if ROLES[role].kind == "orchestrator":
        if not ilp_auth.strip():
            raise ValueError("the orchestrator's QuestDB needs the writers' ILP public keys")
        if not (fleet.alert_rules.strip() and fleet.alertmanager.strip()):
            raise ValueError("the orchestrator's Prometheus needs its alert rules and receiver")
        document = _orchestrator(wireguard_address, fleet, ilp_auth)
    else:
        document = _execution(role, wireguard_address, fleet)
    return yaml.safe_dump({"name": PROJECT_NAME, **document}, sort_keys=False, width=120)


def render_env(values: Mapping[str, str]) -> str:
    """A .env file: one ``NAME=value`` per line, in name order. Compose reads values
    literally up to the end of the line, so a value cannot hold a newline."""
    for name, value in values.items():
        if "\n" in value or "\r" in value:
            raise ValueError(f"{name}: a .env value cannot contain a line break")
    return "".join(f"{name}={values[name]}\n" for name in sorted(values))


def env_values(role: str, fleet: FleetServices, secrets: Mapping[str, str]) -> dict[str, str]:
    """What a host of ``role`` gets in its .env: only what its compose file references
    (``secrets``: every variable by name)."""
    if ROLES[role].kind == "orchestrator":
        wanted = ["GRAFANA_ADMIN_PASSWORD", "QUESTDB_PG_PASSWORD", *fleet.alert_variables]
    else:
        providers = [*fleet.brokers.get(role, ()), *fleet.data_providers.get(role, ())]
        wanted = fleet.variables(providers)
    return {name: secrets[name] for name in wanted if name in secrets}
