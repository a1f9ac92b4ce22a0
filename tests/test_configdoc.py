"""docs/config.md is generated from the config models and cannot go stale."""

from __future__ import annotations

import re

import pytest

from ops.__main__ import main
from ops.configdoc import DOC, render
from stacks.config import NetworkConfig, RegionalStackConfig


def test_the_committed_reference_is_what_the_models_render() -> None:
    assert DOC.read_text() == render(), "docs/config.md is stale: run `python -m ops config-doc`"


def test_check_fails_on_a_stale_reference(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("ops.configdoc.render", lambda: render() + "drift\n")
    assert main(["config-doc", "--check"]) == 1
    assert "config-doc" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["config-doc", "--check"]) == 0


def _row(text: str, section: str, key: str) -> list[str]:
    body = text.split(f"### `{section}`\n", 1)[1].split("\n### ", 1)[0]
    (line,) = [row for row in body.splitlines() if row.startswith(f"| `{key}` |")]
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def test_every_key_type_default_bound_and_description_comes_from_the_model() -> None:
    text = render()
    _, type_, default, bounds, description = _row(text, "network", "azCount")
    field = NetworkConfig.model_fields["az_count"]
    assert (type_, default, bounds) == ("integer", f"`{field.default}`", "≥ 2; ≤ 3")
    assert description == field.description
    assert _row(text, "network", "cidr")[2] == "**required**"
    # Every field of every section appears, under its camelCase key.
    for name, field in NetworkConfig.model_fields.items():
        assert f"| `{field.alias or name}` |" in text
    for name, field in RegionalStackConfig.model_fields.items():
        key = field.alias or name
        assert re.search(rf"\| \[?`{re.escape(key)}`", text), key


def test_links_point_at_sections_that_exist() -> None:
    text = render()
    anchors = {
        re.sub(r"[^a-z0-9-]", "", heading.lower())
        for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    }
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert links and set(links) <= anchors
