"""The restore drill: the rendered host script run for real (restic against moto's S3
server on 127.0.0.1, after real backups by the rendered backup script), judged by
``ops.restore_drill``; and ``python -m ops restore-drill`` end to end over a real SSH
session to a real sshd, with a state export naming the host."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components import vps
from components.backup import RESTORE_DRILL, backup_env, restore_drill_settings
from ops.__main__ import main
from ops.drift.vps import HostExpectation
from ops.restore_drill import DrillError, evaluate, run_drill
from stacks.outputs import BACKUP_RPO_MINUTES, FLEET_HOSTS
from tests.sshd import Server, free_port, running_sshd
from tests.test_backup import BUCKET, KEEP_MANY, REGION, Host, s3_client


class Drill:
    """The host's restore drill as sudo runs it: the rendered script, its settings
    pointed into the host's scratch directory, the host's backup.env."""

    def __init__(self, host: Host, endpoint: str) -> None:
        root = host.root
        self.env_file = root / "backup.env"
        self.env_file.write_text(
            backup_env(f"s3:{endpoint}/{BUCKET}/{host.name}", "testing", "testing", "pw")
        )
        self.scratch = root / "scratch"
        settings = {
            **restore_drill_settings(host.name),
            "BACKUP_ENV": str(self.env_file),
            "LOCK": str(root / "backup.lock"),
            "SCRATCH_PARENT": str(self.scratch),
        }
        self.script = root / "restore-drill.sh"
        self.script.write_text(vps.with_settings("restore_drill.sh", **settings))
        self.script.chmod(0o755)
        # Only what sudo's environment has: the credentials come from backup.env.
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(root),
            "XDG_CACHE_HOME": str(root / "cache"),
            "AWS_DEFAULT_REGION": REGION,
        }

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.script)], env=self.env, capture_output=True, text=True, timeout=120
        )


def backed_up(tmp_path: Path, endpoint: str, name: str) -> Host:
    host = Host(tmp_path, endpoint, name, "orchestrator", KEEP_MANY)
    table = host.volumes / "trading-infra_questdb-data" / "db" / "trades.d"
    table.parent.mkdir(parents=True)
    table.write_bytes(os.urandom(300_000))
    (table.parent / "empty.d").write_bytes(b"")
    result = host.run()
    assert result.returncode == 0, result.stderr
    return host


def volume_files(host: Host) -> dict[str, int]:
    """Every file of the host's volumes (the stand-in's own bookkeeping aside)."""
    return {
        str(path): path.stat().st_size
        for path in host.volumes.glob("trading-infra_*/**/*")
        if path.is_file()
    }


@pytest.fixture(scope="module")
def cdmx(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Host:
    """One host backed up once, drilled by the tests that leave its repository as is
    (its own prefix: the bucket outlives each module)."""
    return backed_up(tmp_path_factory.mktemp("cdmx"), s3_endpoint, "drill-shared")


def test_a_drill_restores_every_file_at_its_size_and_reports_rpo_and_time(
    cdmx: Host, s3_endpoint: str
) -> None:
    host = cdmx
    drill = Drill(host, s3_endpoint)
    ran = drill.run()
    assert ran.returncode == 0, ran.stderr
    result = evaluate(host.name, ran.stdout, rpo_minutes=5)
    assert result.problems == []
    files = volume_files(host)
    assert result.files == len(files) and result.bytes == sum(files.values())
    assert 0 <= result.age_seconds < 120
    assert result.restore_seconds > 0
    # The scratch copy is gone; the lock file is all that stays.
    assert list(drill.scratch.iterdir()) == []


def test_an_old_latest_snapshot_misses_the_rpo(tmp_path: Path, s3_endpoint: str) -> None:
    host = Host(tmp_path, s3_endpoint, "drill-old", "futures", KEEP_MANY)
    data = host.volumes / "trading-infra_redis-data"
    (data / "dump.rdb").write_bytes(b"REDIS0011")
    host.restic("init")
    host.restic("backup", "--host", host.name, "--time", "2020-01-01 10:00:00", str(data))
    ran = Drill(host, s3_endpoint).run()
    assert ran.returncode == 0, ran.stderr
    result = evaluate(host.name, ran.stdout, rpo_minutes=5)
    assert not result.passed
    assert [p for p in result.problems if p.startswith("RPO missed")] == result.problems
    assert result.snapshot_time.startswith("2020-01-01T10:00:00")


def _biggest_pack(endpoint: str, host: Host) -> tuple[Any, dict[str, Any]]:
    s3 = s3_client(endpoint)
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{host.name}/data/")["Contents"]
    return s3, max(listing, key=lambda o: o["Size"])


def test_damaged_data_fails_the_verified_restore(tmp_path: Path, s3_endpoint: str) -> None:
    host = backed_up(tmp_path, s3_endpoint, "drill-garbled")
    s3, pack = _biggest_pack(s3_endpoint, host)
    # Overwritten with garbage of the same size (a new version; the locked one stays):
    # only reading the data finds it, which the verified restore does.
    s3.put_object(Bucket=BUCKET, Key=pack["Key"], Body=os.urandom(pack["Size"]))
    ran = Drill(host, s3_endpoint).run()
    assert ran.returncode == 0, ran.stderr
    problems = evaluate(host.name, ran.stdout, rpo_minutes=5).problems
    assert any(p.startswith("restic restore --verify failed") for p in problems), problems


def test_a_damaged_index_fails_the_drill_with_restics_reason(
    tmp_path: Path, s3_endpoint: str
) -> None:
    """The drill reads the repository's index, not the host's cache of it: a damaged
    one stops it, and ops restore-drill says why (restic's own words)."""
    host = backed_up(tmp_path, s3_endpoint, "drill-index")
    s3, _ = _biggest_pack(s3_endpoint, host)
    (index,) = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{host.name}/index/")["Contents"]
    s3.put_object(Bucket=BUCKET, Key=index["Key"], Body=os.urandom(index["Size"]))
    drill = Drill(host, s3_endpoint)

    class Local:
        def execute(self, command: str, timeout: float) -> tuple[int, str, str]:
            assert command == f"sudo -n {RESTORE_DRILL}"
            ran = drill.run()
            return ran.returncode, ran.stdout, ran.stderr

    expected = HostExpectation(host.name, None, "127.0.0.1", 22, "drift", "")
    with pytest.raises(DrillError, match=r"exited 1:\nFatal: load <index/.*invalid data"):
        run_drill(expected, Local(), 5)


def test_a_file_restored_short_or_not_at_all_is_named(cdmx: Host, s3_endpoint: str) -> None:
    host = cdmx
    output = Drill(host, s3_endpoint).run().stdout
    head, _, tail = output.partition("### restored\n")
    restored, _, rest = tail.partition("### check\n")
    lines = restored.splitlines()
    big = next(line for line in lines if line.endswith("trades.d"))
    short = [f"1 {big.split(' ', 1)[1]}" if line == big else line for line in lines]
    dropped = [line for line in lines if line != big]

    def rebuilt(kept: list[str]) -> str:
        return f"{head}### restored\n" + "".join(f"{x}\n" for x in kept) + f"### check\n{rest}"

    assert evaluate(host.name, rebuilt(lines), 5).passed
    (problem,) = evaluate(host.name, rebuilt(short), 5).problems
    assert "another size" in problem and "trades.d" in problem
    (problem,) = evaluate(host.name, rebuilt(dropped), 5).problems
    assert "not restored" in problem and "trades.d" in problem


def test_a_repository_without_snapshots_is_an_error_not_a_pass(
    tmp_path: Path, s3_endpoint: str
) -> None:
    host = Host(tmp_path, s3_endpoint, "drill-empty", "futures", KEEP_MANY)
    host.restic("init")
    ran = Drill(host, s3_endpoint).run()
    # restic 0.14 restores "latest" of an empty repository without a word: the
    # drill's report is what says so.
    assert ran.returncode == 0, ran.stderr
    with pytest.raises(DrillError, match="has no snapshot"):
        evaluate(host.name, ran.stdout, 5)


def test_output_without_its_sections_is_an_error_not_a_pass() -> None:
    with pytest.raises(DrillError, match="lacks"):
        evaluate("h", "### now\n1\n", 5)


def test_the_rendered_drill_passes_shellcheck() -> None:
    from tests.test_vps import shellcheck

    result = shellcheck(vps.with_settings("restore_drill.sh", **restore_drill_settings("h")))
    assert result.returncode == 0, result.stdout


# --- python -m ops restore-drill over SSH ---------------------------------------------


def test_ops_restore_drill_runs_the_hosts_drill_over_ssh_and_exits_by_the_rpo(
    tmp_path: Path, cdmx: Host, s3_endpoint: str, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI reads the host from a state export, logs in with the pinned host key,
    runs the drill through sudo exactly as the drift user's sudoers names it, and
    exits 0 within the RPO, 1 beyond it."""
    host = cdmx
    drill = Drill(host, s3_endpoint)
    serve(server, drill)
    state = tmp_path / "vps.json"
    state.write_text(export_for(server, rpo_minutes=5))
    argv = ["restore-drill", "vps", "--host", "cdmx", "--state", str(state)]
    key = ["--ssh-key", str(server.client_key)]
    assert main([*argv, *key, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["host"] == "cdmx"
    assert report["files"] == len(volume_files(host))
    assert (server.fake / "sudo.log").read_text().split() == ["-n", RESTORE_DRILL]

    # The same drill against a target no snapshot can meet: exit 1, the RPO named.
    state.write_text(export_for(server, rpo_minutes=5, age_the_clock=True))
    assert main([*argv, *key]) == 1
    assert "RPO missed" in capsys.readouterr().out


def test_ops_restore_drill_names_an_unknown_host(
    tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "vps.json"
    state.write_text(export_for(server, rpo_minutes=5))
    argv = ["restore-drill", "vps", "--host", "tokyo", "--state", str(state), "--ssh-key", "k"]
    assert main(argv) == 1
    assert "'tokyo' is not in the stack's fleetHosts: one of cdmx" in capsys.readouterr().err


def test_every_host_is_drilled_and_one_unreachable_host_fails_the_run(
    tmp_path: Path, cdmx: Host, s3_endpoint: str, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    drill = Drill(cdmx, s3_endpoint)
    serve(server, drill)
    state = tmp_path / "vps.json"
    gone = {"address": "127.0.0.1", "sshPort": free_port(), "hostKey": server.host_key}
    state.write_text(export_for(server, rpo_minutes=5, more={"nj": gone}))
    argv = ["restore-drill", "vps", "--every-host", "--state", str(state)]
    assert main([*argv, "--ssh-key", str(server.client_key), "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert "## Restore drill of cdmx: passed" in out
    assert "## Restore drill of nj: FAILED" in out


def test_ops_restore_drill_refuses_another_stacks_state(
    tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "sg.json"
    state.write_text(
        export_for(server, rpo_minutes=5).replace("urn:pulumi:vps::", "urn:pulumi:sg::")
    )
    argv = ["restore-drill", "vps", "--host", "cdmx", "--state", str(state), "--ssh-key", "k"]
    assert main(argv) == 1
    assert "the state is stack 'sg''s, not 'vps''s" in capsys.readouterr().err


def serve(server: Server, drill: Drill) -> None:
    """The test sshd's sudo runs ``drill`` as it runs the host's (see ``SUDO``)."""
    (server.fake / "drill").write_text(
        f"#!/bin/sh\nexport HOME={drill.env['HOME']} XDG_CACHE_HOME={drill.env['XDG_CACHE_HOME']}"
        f" AWS_DEFAULT_REGION={REGION}\nexec {drill.script}\n"
    )
    (server.fake / "drill").chmod(0o755)


def export_for(
    server: Server, rpo_minutes: int, age_the_clock: bool = False, more: dict | None = None
) -> str:
    """A vps state export whose host cdmx is the test sshd (and ``more`` hosts)."""
    outputs = {
        FLEET_HOSTS: {
            "cdmx": {
                "address": "127.0.0.1",
                "sshPort": server.port,
                "hostKey": server.host_key,
            },
            **(more or {}),
        },
        # A negative target: whatever the snapshot's age, it is too old.
        BACKUP_RPO_MINUTES: -1 if age_the_clock else rpo_minutes,
    }
    stack = {
        "urn": "urn:pulumi:vps::trading-infra::pulumi:pulumi:Stack::trading-infra-vps",
        "type": "pulumi:pulumi:Stack",
        "custom": False,
        "outputs": outputs,
    }
    return json.dumps({"version": 3, "deployment": {"resources": [stack]}})


SUDO = (
    "#!/bin/sh\n"
    'printf "%s\\n" "$@" >"{fake}/sudo.log"\n'
    f'[ "$1" = -n ] && [ "$2" = {RESTORE_DRILL} ] && [ $# -eq 2 ] && exec "{{fake}}/drill"\n'
    "exit 1\n"
)
"""The host's sudo as the drift user's sudoers has it: the drill, with no arguments
(at its path on a real host, here ``fake/drill``), and nothing else."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_sshd(tmp_path_factory.mktemp("sshd"), {"sudo": SUDO}) as started:
        yield started


@pytest.fixture(autouse=True)
def _as_the_test_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test sshd admits the user running the tests, not a drift user."""
    import ops.drift.vps

    monkeypatch.setattr(ops.drift.vps, "DRIFT_USER", getpass.getuser())
