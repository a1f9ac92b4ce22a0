"""The sample backend: region-aware health and the X-Region header."""

from __future__ import annotations

import importlib

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("APP_VERSION", "1.2.3")
    import app.main

    return TestClient(importlib.reload(app.main).app)


def test_health_reports_status_region_and_version(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "region": "eu-central-1", "version": "1.2.3"}


@pytest.mark.parametrize(("path", "status"), [("/health", 200), ("/no-such-route", 404)])
def test_every_response_names_its_region(client: TestClient, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["X-Region"] == "eu-central-1"


def test_image_pins_the_versions_the_tests_ran_against() -> None:
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    locked = {
        package["name"]: package["version"]
        for package in tomllib.loads((root / "uv.lock").read_text())["package"]
    }
    pins = dict(
        line.split("==")
        for line in (root / "app" / "requirements.txt").read_text().split()
        if "==" in line
    )
    assert pins and pins == {name: locked[name] for name in pins}


def test_dockerfile_runs_unprivileged_with_a_health_check() -> None:
    from pathlib import Path

    lines = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text().splitlines()
    instructions = [line.split(maxsplit=1) for line in lines if line and line[0] not in "# "]
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert any(op == "HEALTHCHECK" for op, _ in instructions)
    base = next(args for op, args in instructions if op == "FROM")
    assert ":" in base and not base.endswith(":latest")
