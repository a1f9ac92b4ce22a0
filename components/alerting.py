"""Fleet alerting: what each host measures, the Prometheus rules over it, and where
Alertmanager sends what fires.

- Every host runs ``fleet-metrics.sh`` each minute (a systemd timer, as root: it asks
  Docker and WireGuard) and writes ``METRICS_DIR/fleet.prom``: each compose service's
  state, health and restart count, each WireGuard peer's latest handshake, and the
  free space of the filesystems the data lives on. ``backup.sh`` writes
  ``backup.prom`` beside it.
- A node exporter on each host serves that directory (its textfile collector only:
  no host filesystem is mounted into it) on the host's WireGuard address; the
  orchestrator's Prometheus scrapes every host over the mesh, evaluates
  ``alert_rules`` and sends to its Alertmanager (127.0.0.1 only), which routes to the
  receiver of ``fleet.alerting``: a webhook or e-mail.
- The receiver's secret (the webhook URL, the SMTP password) is a Pulumi secret in the
  orchestrator's root-only ``.env``; the compose file holds only ``${VARIABLE}``, which
  Compose fills in when it starts Alertmanager. The compose file is in the stack's
  state in clear, so the secret never is.

What this cannot see: the orchestrator itself going down takes Prometheus and
Alertmanager with it. docs/fleet.md ("Alerting") says how to cover that from outside.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import yaml
from pydantic import Field, model_validator

from components.compose import METRICS_DIR, env_reference
from components.settings import Settings

FLEET_METRICS = f"{METRICS_DIR}/fleet.prom"
METRICS_SCRIPT = "/usr/local/lib/trading-infra/fleet-metrics.sh"
METRICS_UNIT = "trading-infra-metrics"
"""The systemd service and timer (``<unit>.service``, ``<unit>.timer``)."""
WEBHOOK_URL_VARIABLE = "ALERT_WEBHOOK_URL"
SMTP_PASSWORD_VARIABLE = "ALERT_SMTP_PASSWORD"  # noqa: S105 (a variable name)
"""The orchestrator's .env variables of the receiver's secret."""
RESTARTS_PER_15_MINUTES = 3
"""A container restarted this often in 15 minutes is crash-looping."""
CONTAINER_UNHEALTHY_MINUTES = 3
HOST_DOWN_MINUTES = 3
METRICS_STALE_SECONDS = 300
"""``fleet.prom`` older than this: the metrics timer stopped (it runs every minute)."""

_SMARTHOST = r"^[A-Za-z0-9.-]+:[0-9]{1,5}$"
_EMAIL = r"^[^@\s\"\\$]+@[^@\s\"\\$]+\.[A-Za-z]{2,}$"


class EmailReceiverSettings(Settings):
    """``trading-infra:fleet.alerting.email``: where e-mail alerts go and through which
    SMTP server; its password is the ``alertSmtpPassword`` secret."""

    to: Annotated[list[Annotated[str, Field(pattern=_EMAIL)]], Field(min_length=1)]
    """Addresses the alerts go to. Required."""
    sender: Annotated[str, Field(pattern=_EMAIL)]
    """The From address. Required."""
    smarthost: Annotated[str, Field(pattern=_SMARTHOST)]
    """The SMTP server, ``host:port`` (587: STARTTLS, which is required). Required."""
    username: Annotated[str, Field(min_length=1, pattern=r"^[^\s\"\\$]+$")]
    """The SMTP login. Required."""


class AlertingSettings(Settings):
    """``trading-infra:fleet.alerting``: the fleet's alert thresholds and receiver."""

    receiver: Literal["webhook", "email"] = "webhook"
    """Where alerts go: ``webhook`` (an HTTPS URL, the ``alertWebhookUrl`` secret: a
    Slack, Opsgenie or PagerDuty integration URL) or ``email`` (``email`` below, the
    ``alertSmtpPassword`` secret). Default webhook."""
    email: EmailReceiverSettings | None = None
    """The e-mail receiver. Required with ``receiver: email``, refused otherwise."""
    disk_used_percent: Annotated[int, Field(ge=50, le=99)] = 85
    """Alert when a data filesystem (``/``, ``/var/lib/docker``) is fuller than this
    for 10 minutes. Default 85."""
    wireguard_handshake_minutes: Annotated[int, Field(ge=3, le=60)] = 5
    """Alert when a WireGuard peer has not completed a handshake for this long (with
    keepalives every 25 s a live peer renews its session every 2 minutes). Default 5."""
    repeat_interval_hours: Annotated[int, Field(ge=1, le=72)] = 4
    """How often a still-firing alert is sent again. Default 4."""

    @model_validator(mode="after")
    def _receiver_settings(self) -> AlertingSettings:
        if self.receiver == "email" and self.email is None:
            raise ValueError(
                "@email: receiver is email; set email {to, sender, smarthost, username}"
            )
        if self.receiver == "webhook" and self.email is not None:
            raise ValueError(
                "@email: receiver is webhook; remove email, or set receiver: email to use it"
            )
        return self


_SECRET_SAFE = re.compile(r'^[^\s"\\$]+$')


def receiver_secret_problem(value: str, receiver: str) -> str | None:
    """Why ``value`` cannot be the receiver's secret, or None. It is filled into the
    Alertmanager config as a double-quoted YAML string by Compose's interpolation, so
    a quote, a backslash, a ``$`` or white space would change the config."""
    if receiver == "webhook" and not value.startswith("https://"):
        return "must be an https:// URL (alerts carry host names and addresses)"
    if not _SECRET_SAFE.match(value):
        return (
            "cannot contain white space, '\"', '\\' or '$' (it is filled into the "
            "Alertmanager config by Compose); "
            + ("URL-encode them" if receiver == "webhook" else "generate another password")
        )
    return None


def receiver_variable(settings: AlertingSettings) -> str:
    """The .env variable that carries the receiver's secret."""
    return WEBHOOK_URL_VARIABLE if settings.receiver == "webhook" else SMTP_PASSWORD_VARIABLE


_SECRET = "TRADING_INFRA_RECEIVER_SECRET"  # noqa: S105 (a placeholder)
"""Where the receiver's secret goes in the rendered config (a plain YAML scalar)."""


def alertmanager_config(settings: AlertingSettings) -> str:
    """Alertmanager's config, its secret as ``${VARIABLE}`` for Compose to fill in:
    one route, grouped by alert and host, to the configured receiver
    (https://prometheus.io/docs/alerting/latest/configuration/)."""
    receiver: dict = {"name": "fleet"}
    config: dict = {"global": {"resolve_timeout": "5m"}}
    if settings.receiver == "webhook":
        receiver["webhook_configs"] = [{"url": _SECRET, "send_resolved": True}]
    else:
        email = settings.email
        assert email is not None  # the settings refuse email without it
        config["global"] |= {
            "smtp_smarthost": email.smarthost,
            "smtp_from": email.sender,
            "smtp_auth_username": email.username,
            "smtp_auth_password": _SECRET,
            "smtp_require_tls": True,
        }
        receiver["email_configs"] = [{"to": ", ".join(email.to), "send_resolved": True}]
    config |= {
        "route": {
            "receiver": "fleet",
            "group_by": ["alertname", "host"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": f"{settings.repeat_interval_hours}h",
        },
        "receivers": [receiver],
    }
    # In double quotes: Compose fills the secret in before Alertmanager parses it, and
    # only '"' and '\\' (which the secret cannot hold) are special there.
    text = yaml.safe_dump(config, sort_keys=False, width=200)
    return text.replace(_SECRET, f'"{env_reference(receiver_variable(settings))}"')


def _rule(alert: str, expr: str, minutes: int, severity: str, summary: str) -> dict:
    rule: dict = {"alert": alert, "expr": expr}
    if minutes:
        rule["for"] = f"{minutes}m"
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary}
    return rule


def alert_rules(settings: AlertingSettings, backup_interval_minutes: int) -> str:
    """The fleet's Prometheus alerting rules
    (https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/). Every
    series carries the ``host`` and ``role`` labels of its scrape target."""
    backup_stale = 2 * backup_interval_minutes * 60
    handshake = settings.wireguard_handshake_minutes * 60
    on_host = "{{ $labels.host }} ({{ $labels.role }})"
    rules = [
        _rule(
            "FleetHostDown",
            'up{job="node"} == 0',
            HOST_DOWN_MINUTES,
            "critical",
            f"{on_host}: no answer over WireGuard for {HOST_DOWN_MINUTES} minutes",
        ),
        _rule(
            "FleetHostMetricsMissing",
            f'up{{job="node"}} == 1 unless on(host) (time() - node_textfile_mtime_seconds'
            f'{{file=~".*fleet\\\\.prom"}} < {METRICS_STALE_SECONDS})',
            5,
            "warning",
            f"{on_host}: fleet.prom is missing or older than {METRICS_STALE_SECONDS // 60} "
            "minutes (is trading-infra-metrics.timer running?)",
        ),
        _rule(
            "FleetContainerUnhealthy",
            "trading_infra_container_healthy == 0",
            CONTAINER_UNHEALTHY_MINUTES,
            "critical",
            f"{on_host}: service {{{{ $labels.service }}}} is not running and healthy",
        ),
        _rule(
            "FleetContainerRestarting",
            f"increase(trading_infra_container_restarts_total[15m]) >= {RESTARTS_PER_15_MINUTES}",
            0,
            "warning",
            f"{on_host}: service {{{{ $labels.service }}}} restarted {{{{ $value }}}} "
            "times in 15 minutes",
        ),
        _rule(
            "FleetDiskFilling",
            "100 * (1 - trading_infra_filesystem_avail_bytes / "
            f"trading_infra_filesystem_size_bytes) > {settings.disk_used_percent}",
            10,
            "warning",
            f"{on_host}: {{{{ $labels.mountpoint }}}} is {{{{ $value | humanize }}}}% full "
            f"(threshold {settings.disk_used_percent}%)",
        ),
        _rule(
            "FleetWireGuardPeerSilent",
            f"time() - trading_infra_wireguard_latest_handshake_seconds > {handshake}",
            2,
            "critical",
            f"{on_host}: no WireGuard handshake with {{{{ $labels.peer }}}} for over "
            f"{settings.wireguard_handshake_minutes} minutes",
        ),
        _rule(
            "FleetBackupStale",
            f"time() - trading_infra_backup_last_success_timestamp_seconds > {backup_stale}",
            0,
            "critical",
            f"{on_host}: no successful backup for over {2 * backup_interval_minutes} "
            "minutes (2 x the interval): the RPO is not met",
        ),
        _rule(
            "FleetBackupFailed",
            "trading_infra_backup_last_run_success == 0",
            0,
            "warning",
            f"{on_host}: the last backup run failed (journalctl -u trading-infra-backup)",
        ),
    ]
    return yaml.safe_dump({"groups": [{"name": "fleet", "rules": rules}]}, sort_keys=False)


def metrics_service() -> str:
    """The oneshot service the timer starts: the metrics script, as root (it asks the
    Docker engine and WireGuard), writing only to ``METRICS_DIR``."""
    return "\n".join(
        [
            "[Unit]",
            "Description=trading-infra: container, WireGuard and disk metrics for alerting",
            "After=docker.service wg-quick@wg0.service",
            "",
            "[Service]",
            "Type=oneshot",
            f"ExecStart={METRICS_SCRIPT}",
            "ProtectSystem=strict",
            f"ReadWritePaths={METRICS_DIR}",
            "ProtectHome=read-only",
            "PrivateTmp=yes",
            "NoNewPrivileges=yes",
            "TimeoutStartSec=50s",
            "",
        ]
    )


def metrics_timer() -> str:
    """Every minute, and soon after boot."""
    return "\n".join(
        [
            "[Unit]",
            "Description=trading-infra: fleet metrics every minute",
            "",
            "[Timer]",
            "OnBootSec=30s",
            "OnUnitActiveSec=1min",
            "AccuracySec=5s",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )
