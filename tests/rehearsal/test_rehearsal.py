"""The vps stack's commands, run as pulumi-command runs them, over real SSH through the
jump host to sandboxed hosts (see conftest.py, engine.py, sandbox.py). The assertions
are about effects on the hosts, not about the strings."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess

import paramiko
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from pulumi.runtime import MockResourceArgs

from components.alerting import FLEET_METRICS, METRICS_SCRIPT, METRICS_UNIT
from components.backup import (
    BACKUP_ENV,
    BACKUP_SCRIPT,
    BACKUP_UNIT,
    RESTORE_DRILL,
    RESTORE_DRILL_SUDOERS,
)
from components.compose import ILP_ENV
from components.vps import APP_DIR, DRIFT_USER, drift_reads, step_scripts
from ops.drift.vps import (
    HostExpectation,
    SshRemote,
    bootstrap_files,
    inspect,
    read_command,
)
from ops.restore_drill import run_drill
from stacks.config import PROJECT
from stacks.outputs import FLEET_ENV_DIGESTS
from tests.rehearsal.conftest import HOSTS, Fleet
from tests.rehearsal.engine import StepFailedError, run

WG_CONF = "/etc/wireguard/wg0.conf"


def wg_pubkey(private: str) -> str:
    return subprocess.run(
        ["wg", "pubkey"], input=private, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def steps_of(operations: list, host: str) -> list[tuple[str, str]]:
    return [
        (o.name.removeprefix(f"{host}-"), o.op) for o in operations if o.name.startswith(f"{host}-")
    ]


@pytest.fixture(scope="module")
def first(fleet: Fleet):
    fleet.reset()
    return fleet.deploy(fleet.config())


def test_every_step_of_every_host_ran_in_dependency_order(first) -> None:
    _, operations = first
    for host in HOSTS:
        steps = [name for name, op in steps_of(operations, host)]
        assert {op for _, op in steps_of(operations, host)} == {"create"}
        order = {name: steps.index(name) for name in steps}
        assert order["bootstrap"] < order["wireguard-key"] < order["wireguard"]
        assert order["bootstrap"] < order["env-file"] < order["compose-up"]
        assert order["wireguard"] < order["compose-file"] < order["compose-up"] < order["health"]


@pytest.mark.parametrize("host", HOSTS)
def test_env_file_holds_exactly_the_secret_payload_readable_by_its_owner_only(
    fleet: Fleet, first, host: str
) -> None:
    plan, _ = first
    payload = plan.named(f"{host}-env-file").revealed["stdin"]
    assert payload, "every host's .env carries secrets"
    box = fleet.hosts[host]
    assert box.read(f"{APP_DIR}/.env") == payload
    assert box.mode(f"{APP_DIR}/.env") == 0o600
    if host == "cdmx":
        assert "GRAFANA_ADMIN_PASSWORD=grafana-rehearsal-pass\n" in payload


@pytest.mark.parametrize("host", HOSTS)
def test_backup_step_installs_its_credentials_from_stdin_and_starts_the_timer(
    fleet: Fleet, first, host: str
) -> None:
    plan, operations = first
    steps = [name for name, _ in steps_of(operations, host)]
    assert steps.index("health") < steps.index("backup")
    payload = plan.named(f"{host}-backup").revealed["stdin"]
    assert 'RESTIC_PASSWORD="restic-rehearsal-pass"\n' in payload
    box = fleet.hosts[host]
    assert box.read(BACKUP_ENV) == payload
    assert box.mode(BACKUP_ENV) == 0o600
    script = box.read(BACKUP_SCRIPT)
    assert f"readonly BACKUP_HOST={host}\n" in script and box.mode(BACKUP_SCRIPT) == 0o755
    assert f"systemctl enable --now {BACKUP_UNIT}.timer" in box.calls()


@pytest.mark.parametrize("host", HOSTS)
def test_metrics_step_starts_the_timer_and_its_script_reports_the_host(
    fleet: Fleet, first, host: str
) -> None:
    """The installed metrics script, run as the timer runs it (root), on a deployed
    host: every service of its compose file and every peer, in a file promtool reads."""
    plan, operations = first
    steps = [name for name, _ in steps_of(operations, host)]
    assert steps.index("metrics") < steps.index("compose-up")
    box = fleet.hosts[host]
    assert box.mode(METRICS_SCRIPT) == 0o755
    assert f"systemctl enable --now {METRICS_UNIT}.timer" in box.calls()
    connection = plan.named(f"{host}-metrics").revealed["connection"]
    run(
        connection,
        f"sudo {METRICS_SCRIPT}",
        stdin=None,
        environment=None,
        routes=fleet.mocks.routes,
    )
    text = box.read(FLEET_METRICS)
    assert box.mode(FLEET_METRICS) == 0o644
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    services = yaml.safe_load(box.read(f"{APP_DIR}/docker-compose.yml"))["services"]
    for service in services:
        assert f'trading_infra_container_healthy{{service="{service}"}} 1\n' in text
    for peer in HOSTS:
        line = f'trading_infra_wireguard_latest_handshake_seconds{{peer="{peer}"}} 1700000000\n'
        assert (line in text) == (peer != host), peer


@pytest.mark.parametrize("host", HOSTS)
def test_wireguard_config_holds_the_hosts_own_key_and_every_peer_once(
    fleet: Fleet, first, host: str
) -> None:
    plan, _ = first
    public_keys = plan.outputs["wireguardPublicKeys"]
    box = fleet.hosts[host]
    private = box.read("/etc/wireguard/private.key").strip()
    assert box.mode("/etc/wireguard/private.key") == 0o600
    assert wg_pubkey(private) == public_keys[host]
    config = box.read(WG_CONF)
    assert box.mode(WG_CONF) == 0o600
    assert config.count("PrivateKey = ") == 1
    assert f"PrivateKey = {private}\n" in config
    peers = [
        line.split("=", 1)[1].strip()
        for line in config.splitlines()
        if line.startswith("PublicKey")
    ]
    assert sorted(peers) == sorted(key for name, key in public_keys.items() if name != host)


@pytest.mark.parametrize("host", HOSTS)
def test_services_run_the_files_the_stack_rendered(fleet: Fleet, first, host: str) -> None:
    plan, _ = first
    box = fleet.hosts[host]
    source = plan.named(f"{host}-compose-file").revealed["source"]
    installed = box.read(f"{APP_DIR}/docker-compose.yml")
    assert hashlib.sha256(installed.encode()).hexdigest() == source["stringAsset"]
    assert "services:" in installed
    deploys = box.state("deploys.log").read_text().splitlines()
    assert deploys[-1].startswith("up ") and "absent" not in deploys[-1]


@pytest.mark.parametrize("host", HOSTS)
def test_docker_logs_in_with_the_pull_token_from_stdin_before_pulling(
    fleet: Fleet, first, host: str
) -> None:
    plan, operations = first
    login = plan.named(f"{host}-registry-login").revealed
    assert "ghp_rehearsal-pull-token" not in login["create"]
    recorded = fleet.hosts[host].state("docker-login").read_text()
    assert (
        recorded == "['--username', 'trading-platform-bot', '--password-stdin', 'ghcr.io']\n"
        "ghp_rehearsal-pull-token"
    )
    steps = [name for name, _ in steps_of(operations, host)]
    assert steps.index("registry-login") < steps.index("compose-up")


def test_questdb_admits_exactly_the_keys_the_writers_generated(fleet: Fleet, first) -> None:
    compose = yaml.safe_load(fleet.hosts["cdmx"].read(f"{APP_DIR}/docker-compose.yml"))
    listed = compose["configs"]["questdb-ilp-auth"]["content"].splitlines()
    expected = []
    for host in ("chicago", "nj"):
        box = fleet.hosts[host]
        assert box.mode(f"{APP_DIR}/{ILP_ENV}") == 0o600
        env = dict(line.split("=", 1) for line in box.read(f"{APP_DIR}/{ILP_ENV}").split())
        # The host's private key matches the public key QuestDB will check.
        secret = int.from_bytes(base64.urlsafe_b64decode(env["QUESTDB_ILP_TOKEN"] + "="), "big")
        point = ec.derive_private_key(secret, ec.SECP256R1()).public_key().public_numbers()
        x = base64.urlsafe_b64encode(point.x.to_bytes(32, "big")).decode().rstrip("=")
        y = base64.urlsafe_b64encode(point.y.to_bytes(32, "big")).decode().rstrip("=")
        expected.append(f"{host} ec-p-256-sha256 {x} {y}")
    assert listed == expected
    assert "QUESTDB_PG_PASSWORD=questdb-rehearsal-pass\n" in fleet.hosts["cdmx"].read(
        f"{APP_DIR}/.env"
    )


def test_a_second_run_changes_nothing(fleet: Fleet, first) -> None:
    _, operations = fleet.deploy(fleet.config())
    assert {o.op for o in operations} == {"same"}


def test_a_changed_image_updates_in_place_without_taking_services_down(fleet: Fleet, first) -> None:
    raw = fleet.config()
    fleet_config = json.loads(raw[f"{PROJECT}:fleet"])
    images = fleet_config.get("images", {})
    images["redis"] = images.get("redis", "redis:7.4.2-alpine").replace("7.4.2", "7.4.3")
    raw = fleet.config(images=images)
    box = fleet.hosts["chicago"]
    before = box.state("deploys.log").read_text().splitlines()
    _, operations = fleet.deploy(raw)
    steps = dict(steps_of(operations, "chicago"))
    assert steps["compose-file"] == "update"
    assert steps["compose-up"] == "update"
    assert steps["health"] == "update"
    assert "delete" not in {o.op for o in operations}
    after = box.state("deploys.log").read_text().splitlines()[len(before) :]
    assert after and all(line.startswith("up ") for line in after), after


def test_a_failing_health_check_fails_the_deploy(fleet: Fleet, first) -> None:
    box = fleet.hosts["nj"]
    box.state("unhealthy").write_text("market-data\n")
    try:
        with pytest.raises(StepFailedError, match="market-data"):
            fleet.deploy(fleet.config(healthTimeoutSeconds=10))
    finally:
        box.state("unhealthy").unlink()


def test_a_failing_canary_stops_the_rollout_and_the_next_run_widens_it(fleet: Fleet, first) -> None:
    """A release to every host (a new redis) with the canary unhealthy: the canary runs
    it and fails its check; the hosts after it keep their file and their services.
    Once the canary is healthy, the next run goes on host by host, in order."""
    raw = fleet.config()
    images = json.loads(raw[f"{PROJECT}:fleet"])["images"]
    images["redis"] = images["redis"].replace("7.4.2", "7.4.4")
    release = fleet.config(images=images, healthTimeoutSeconds=10)
    order = json.loads(release[f"{PROJECT}:fleet"])["rolloutOrder"]
    canary, *later = order
    compose = f"{APP_DIR}/docker-compose.yml"
    before = {
        h: (fleet.hosts[h].read(compose), fleet.hosts[h].state("deploys.log").read_text())
        for h in order
    }
    fleet.hosts[canary].state("unhealthy").write_text("redis\n")
    try:
        with pytest.raises(StepFailedError, match="redis"):
            fleet.deploy(release)
    finally:
        fleet.hosts[canary].state("unhealthy").unlink()
    assert "7.4.4" in fleet.hosts[canary].read(compose)
    assert fleet.hosts[canary].state("deploys.log").read_text() != before[canary][1]
    for host in later:
        assert (
            fleet.hosts[host].read(compose),
            fleet.hosts[host].state("deploys.log").read_text(),
        ) == before[host], f"{host} was deployed past a failed canary"
    _, operations = fleet.deploy(release)
    ran = [o.name for o in operations if o.op != "same"]
    assert [n for n in ran if n.endswith("-compose-up")] == [f"{h}-compose-up" for h in later]
    at = {name: ran.index(name) for name in ran}
    hops = [f"{canary}-health"]
    for host in later:
        hops += [f"{host}-compose-file", f"{host}-compose-up", f"{host}-health"]
    assert [at[name] for name in hops] == sorted(at[name] for name in hops), ran
    for host in order:
        assert "7.4.4" in fleet.hosts[host].read(compose)


def heredoc(script: str) -> str:
    """How the vps steps were sent before: the script as a heredoc on bash's stdin."""
    return f"bash -s <<'TRADING_INFRA_SCRIPT'\n{script}\nTRADING_INFRA_SCRIPT"


def test_the_harness_catches_a_script_that_swallows_its_stdin(fleet: Fleet, first) -> None:
    """The defect the rehearsal exists for: with the script on bash's stdin, the payload
    pulumi-command writes to the session never reaches ``cat``; the step still exits 0."""
    plan, _ = first
    connection = plan.named("cdmx-env-file").revealed["connection"]
    scratch = "/opt/stdin-check"
    box = fleet.hosts["cdmx"]
    box.inside(f"install -d -o deploy {scratch}")
    script = step_scripts(180)["env-file"].replace(APP_DIR, scratch)
    run(
        connection, heredoc(script), stdin="SECRET=1\n", environment=None, routes=fleet.mocks.routes
    )
    swallowed = box.inside(f"cat {scratch}/.env 2>/dev/null || echo absent").stdout
    assert swallowed != "SECRET=1\n"
    command = plan.named("cdmx-env-file").revealed["create"].replace(APP_DIR, scratch)
    run(connection, command, stdin="SECRET=1\n", environment=None, routes=fleet.mocks.routes)
    assert box.inside(f"cat {scratch}/.env").stdout == "SECRET=1\n"


def drift_expectation(fleet: Fleet, host: str, jump_key: str) -> HostExpectation:
    """How ``ops drift`` sees ``host``: as the drift user, through the jump host whose
    pinned key is ``jump_key``."""
    box = fleet.hosts[host]
    return HostExpectation(
        name=host,
        urn=None,
        address="127.0.0.1",
        port=box.port,
        user=DRIFT_USER,
        host_key=box.host_key,
        jump={"address": "127.0.0.1", "port": fleet.jump.port, "user": "jump", "hostKey": jump_key},
    )


def drift_session(fleet: Fleet, host: str) -> SshRemote:
    """``ops drift``'s own SSH client, as the drift user, through the jump host."""
    return SshRemote(drift_expectation(fleet, host, fleet.jump.host_key), str(fleet.drift_key))


def test_drift_reads_as_its_own_user_through_the_jump_host_and_nothing_more(
    fleet: Fleet, first
) -> None:
    remote = drift_session(fleet, "cdmx")
    try:
        for program in drift_reads():
            status, output = remote.run(read_command(program, APP_DIR))
            assert status == 0, (program, output)
        status, sums = remote.run(read_command("sha256sum", APP_DIR))
        assert f"{APP_DIR}/.env" in sums
        # Its sudo is the reads above, exactly: no secrets, no other command.
        for denied in (
            f"sudo -n cat {APP_DIR}/.env",
            f"cat {APP_DIR}/.env",
            "sudo -n docker ps",
            f"sudo -n sha256sum {APP_DIR}/.env",
            "sudo -n bash -c id",
        ):
            status, _ = remote.run(denied)
            assert status != 0, denied
    finally:
        remote.close()


def test_the_drift_user_runs_the_restore_drill_for_real_and_nothing_else_as_root(
    fleet: Fleet, first
) -> None:
    """``ops restore-drill``'s own path: as the drift user through the jump host, the
    drill the backup step installed, through the sudoers rule it installed, with real
    restic (here against a local repository the host's backup.env is pointed at)."""
    box = fleet.hosts["cdmx"]
    scratch = "/var/lib/trading-infra"
    prepare = f"""set -euo pipefail
export RESTIC_PASSWORD=drill-pass RESTIC_REPOSITORY={scratch}/drill-repo
mkdir -p {scratch}/drill-data
head -c 150000 /dev/urandom >{scratch}/drill-data/table.d
restic --no-cache init >/dev/null
restic --no-cache backup --host cdmx {scratch}/drill-data >/dev/null
cp {BACKUP_ENV} {BACKUP_ENV}.rehearsal
printf 'RESTIC_REPOSITORY="%s"\nRESTIC_PASSWORD="%s"\n' "$RESTIC_REPOSITORY" "$RESTIC_PASSWORD" \
  >{BACKUP_ENV}
"""
    prepared = box.inside(prepare, timeout=60)
    assert prepared.returncode == 0, prepared.stderr
    session = drift_session(fleet, "cdmx")
    try:
        result = run_drill(drift_expectation(fleet, "cdmx", fleet.jump.host_key), session, 5)
        denied, _, _ = session.execute(f"sudo -n {RESTORE_DRILL} --target /", 30)
    finally:
        session.close()
        box.inside(f"mv {BACKUP_ENV}.rehearsal {BACKUP_ENV}; rm -rf {scratch}/drill-*")
    assert result.problems == [], result
    assert (result.files, result.bytes) == (1, 150000)
    assert denied != 0
    assert box.mode(RESTORE_DRILL_SUDOERS) == 0o440
    assert (
        box.read(RESTORE_DRILL_SUDOERS).splitlines()[-1]
        == f'{DRIFT_USER} ALL=(root) NOPASSWD: {RESTORE_DRILL} ""'
    )


def test_ops_drift_finds_a_rehearsed_host_clean_and_a_hand_made_change(fleet: Fleet, first) -> None:
    """``ops drift``'s whole inspection, as the drift user through the jump host, of a
    host the rehearsal deployed: what the state expects is what the host holds."""
    plan, _ = first
    box = fleet.hosts["nj"]
    expected = drift_expectation(fleet, "nj", fleet.jump.host_key)
    expected.compose_path = f"{APP_DIR}/docker-compose.yml"
    expected.compose_text = box.read(expected.compose_path)
    expected.env_sha256 = hashlib.sha256(
        plan.named("nj-env-file").revealed["stdin"].encode()
    ).hexdigest()
    expected.files = bootstrap_files(plan.named("nj-bootstrap").revealed["create"])
    expected.wireguard_config = plan.named("nj-wireguard").revealed["stdin"]
    remote = drift_session(fleet, "nj")
    try:
        assert inspect(expected, remote) == []
        # An operator's hand-made rule is drift.
        ufw = box.root / "bin" / "ufw"  # the host's ufw (the sandbox's stand-in)
        box.inside(f"{ufw} allow 8080/tcp")
        found = inspect(expected, remote)
    finally:
        box.inside(f"{box.root / 'bin' / 'ufw'} delete allow 8080/tcp")
        remote.close()
    assert [(d.attribute, d.actual) for d in found] == [("ufw rule", "allow 8080/tcp")]


def test_ops_drift_compares_the_env_by_keyed_digest_without_the_states_secrets(
    fleet: Fleet, first
) -> None:
    """The drift workflow exports the state without --show-secrets: the .env is compared
    through the stack's keyed digest (fleetEnvDigests), which says nothing without the
    key."""
    plan, _ = first
    digest = plan.outputs[FLEET_ENV_DIGESTS]["chicago"]
    payload = plan.named("chicago-env-file").revealed["stdin"]
    assert hashlib.sha256(payload.encode()).hexdigest() not in json.dumps(plan.outputs)
    expected = drift_expectation(fleet, "chicago", fleet.jump.host_key)
    expected.compose_path = f"{APP_DIR}/docker-compose.yml"
    expected.env_digest = digest
    box = fleet.hosts["chicago"]
    remote = drift_session(fleet, "chicago")
    env_path = f"{APP_DIR}/.env"
    try:
        key = "rehearsal-digest-key"
        env_diffs = [d for d in inspect(expected, remote, key) if d.attribute.startswith(".env")]
        assert env_diffs == []
        wrong = [d.attribute for d in inspect(expected, remote, "another-key")]
        assert ".env digest" in wrong
        box.inside(f"cp -p {env_path} {env_path}.saved && echo EXTRA=1 >> {env_path}")
        changed = [d.attribute for d in inspect(expected, remote, key)]
        assert ".env digest" in changed
    finally:
        box.inside(f"mv {env_path}.saved {env_path}")
        remote.close()


def test_the_drift_user_cannot_log_in_without_the_pinned_jump_host(fleet: Fleet, first) -> None:
    # The jump host pinned to another key (the target's): refused, not trusted.
    wrong = drift_expectation(fleet, "cdmx", fleet.hosts["cdmx"].host_key)
    with pytest.raises(paramiko.BadHostKeyException):
        SshRemote(wrong, str(fleet.drift_key))


def test_the_engine_replaces_on_changed_triggers_and_refuses_a_protected_one(
    fleet: Fleet, first
) -> None:
    """What the fixes avoid, still modelled: a trigger change runs the new create, then
    the old resource's delete at the end of the deployment; protected, it fails."""
    plan, _ = first
    connection = plan.named("cdmx-env-file").revealed["connection"]
    mocks = fleet.mocks

    def register(trigger: int) -> None:
        mocks.new_resource(
            MockResourceArgs(
                typ="command:remote:Command",
                name="probe",
                inputs={
                    "connection": connection,
                    "create": f"echo {trigger} >> /opt/trading-infra/probe",
                    "delete": "echo deleted >> /opt/trading-infra/probe",
                    "triggers": [trigger],
                },
                provider=None,
                resource_id=None,
            )
        )

    start = len(mocks.operations)
    register(1)
    register(2)
    mocks.finish()
    assert [o.op for o in mocks.operations[start:]] == ["create", "replace", "delete"]
    assert fleet.hosts["cdmx"].read(f"{APP_DIR}/probe") == "1\n2\ndeleted\n"
    mocks.protected.add("probe")
    with pytest.raises(StepFailedError, match="protected"):
        register(3)
    mocks.protected.discard("probe")
