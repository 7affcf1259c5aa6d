"""`treue simulate` as a user runs it: a YAML draft over a recorded period, text and JSON, and a bad draft."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.e2e.test_cli import Cli, treue_script  # noqa: F401  (fixture)


def test_simulate_a_yaml_draft_over_recorded_purchases(tmp_path: Path, treue_script):  # noqa: F811
    db = tmp_path / "s.db"
    cli = Cli(f"sqlite:///{db}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "S", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    member = cli.json("members", "enrol", "--program", pid, "--external-ref", "k-1", "--json")["id"]  # type: ignore[index]
    for order, total, at in (("O-1", "30.00", "2026-03-04T10:00:00Z"), ("O-2", "12.50", "2026-03-05T10:00:00Z")):
        cli.run("purchases", "record", "--program", pid, "--order-id", order, "--total", total, "--member", member,
                "--occurred-at", at)  # fmt: skip
    draft = tmp_path / "draft.yaml"
    draft.write_text(yaml.safe_dump({"format": "treue.rules/1", "rules": [
        {"id": "double", "trigger": "purchase", "effects": [{"type": "multiplier", "factor": "2"}]}]}))  # fmt: skip

    report = cli.json("simulate", "--program", pid, "--draft", str(draft), "--from", "2026-03-01", "--to",
                      "2026-03-31", "--json")  # fmt: skip
    assert report["current"]["points_issued"] == 42 and report["draft"]["points_issued"] == 84  # type: ignore[index]
    text = cli.run("simulate", "--program", pid, "--draft", str(draft), "--from", "2026-03-01", "--to", "2026-03-31")
    assert "points_issued" in text.stdout and "42" in text.stdout and "84" in text.stdout

    draft.write_text(yaml.safe_dump({"rules": [{"id": "x", "trigger": "purchase", "effects": [{"type": "nope"}]}]}))
    refused = cli.run("simulate", "--program", pid, "--draft", str(draft), "--from", "2026-03-01", "--to",
                      "2026-03-31", code=1)  # fmt: skip
    assert refused.stderr.startswith("error: rule_invalid:") and len(refused.stderr.strip().splitlines()) == 1
    bad_day = cli.run("simulate", "--program", pid, "--draft", str(draft), "--from", "March", "--to", "2026-03-31",
                      code=1)  # fmt: skip
    assert "not a date" in bad_day.stderr
