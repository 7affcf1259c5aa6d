"""`treue rules|events|purchases preview` as a real console script against a fresh SQLite file."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.e2e.test_cli import TREUE, Cli

REVIEW = {"id": "review-reward", "name": "Bewertung", "trigger": "review.created",
          "effects": [{"type": "fixed_points", "points": 50}], "limits": {"per_member": [{"awards": 1, "per": "month"}]}}  # fmt: skip
WEEKEND = {"id": "weekend-double", "name": "Doppelte Punkte am Wochenende", "trigger": "purchase",
           "condition": "now.weekday >= 6", "effects": [{"type": "multiplier", "factor": "2"}]}  # fmt: skip


@pytest.fixture(scope="module")
def treue_script() -> Path:
    assert TREUE.exists(), f"the console script is missing at {TREUE} (pip install -e .)"
    return TREUE


def next_saturday() -> str:
    """A Saturday noon (Berlin) after the rules were created, so the weekend rule is in force."""
    day = datetime.now(UTC).date() + timedelta(days=1)
    while day.isoweekday() != 6:
        day += timedelta(days=1)
    return f"{day.isoformat()}T10:00:00Z"


def rule_rows(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT rule_id, version FROM rule_versions ORDER BY rule_id, version"))


def test_rules_export_import_validate_events_and_preview(tmp_path: Path, treue_script):
    db = tmp_path / "r.db"
    cli = Cli(f"sqlite:///{db}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "R", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    document = tmp_path / "rules.json"
    document.write_text(json.dumps({"format": "treue.rules/1", "rules": [REVIEW, WEEKEND]}), encoding="utf-8")

    # A dry run reports and changes nothing.
    dry = cli.json("rules", "import", str(document), "--program", pid, "--dry-run")
    assert dry == dry | {"dry_run": True, "created": ["review-reward", "weekend-double"]}
    assert rule_rows(db) == []
    assert cli.run("rules", "list", "--program", pid).stdout == ""

    done = cli.json("rules", "import", str(document), "--program", pid)
    assert done["created"] == ["review-reward", "weekend-double"]  # type: ignore[index]
    again = cli.json("rules", "import", str(document), "--program", pid)
    assert again["created"] == [] and again["unchanged"] == ["review-reward", "weekend-double"]  # type: ignore[index]
    assert rule_rows(db) == [("review-reward", 1), ("weekend-double", 1)]
    listed = cli.run("rules", "list", "--program", pid).stdout.splitlines()
    assert [line.split()[0] for line in listed] == ["review-reward", "weekend-double"]

    exported = tmp_path / "export.json"
    cli.run("rules", "export", "--program", pid, "--output", str(exported))
    data = json.loads(exported.read_text(encoding="utf-8"))
    assert data["format"] == "treue.rules/1" and sorted(r["id"] for r in data["rules"]) == [
        "review-reward", "weekend-double"]  # fmt: skip
    assert json.loads(cli.run("rules", "export", "--program", pid).stdout) == data
    # YAML: the same document, and importing it back changes nothing.
    as_yaml = tmp_path / "export.yaml"
    cli.run("rules", "export", "--program", pid, "--format", "yaml", "--output", str(as_yaml))
    assert yaml.safe_load(as_yaml.read_text(encoding="utf-8")) == data
    from_yaml = cli.json("rules", "import", str(as_yaml), "--program", pid)
    assert from_yaml["created"] == [] and from_yaml["unchanged"] == ["review-reward", "weekend-double"]  # type: ignore[index]
    assert rule_rows(db) == [("review-reward", 1), ("weekend-double", 1)]

    # validate: a good rule file and a good document pass; a bad one exits 1 with one error line.
    good = tmp_path / "good.json"
    good.write_text(json.dumps(WEEKEND | {"priority": 3}), encoding="utf-8")
    assert cli.run("rules", "validate", str(good), "--program", pid).stdout.startswith("ok: rule weekend-double")
    assert cli.run("rules", "validate", str(document), "--program", pid).stdout.startswith("ok:")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(WEEKEND | {"condition": "purchase.totl >= 5000"}), encoding="utf-8")
    refused = cli.run("rules", "validate", str(bad), "--program", pid, code=1)
    assert refused.stdout == ""
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: rule_invalid: condition:") and "column" in lines[0]
    negative = tmp_path / "negative.json"
    negative.write_text(json.dumps({**REVIEW, "effects": [{"type": "fixed_points", "points": -1}]}), encoding="utf-8")
    refused = cli.run("rules", "validate", str(negative), "--program", pid, code=1)
    assert refused.stderr.startswith("error: rule_invalid: effects[0].points")
    cli.run("rules", "import", str(bad), "--program", pid, code=1)
    assert rule_rows(db) == [("review-reward", 1), ("weekend-double", 1)]

    # events and the checkout preview
    member = cli.json("members", "enrol", "--program", pid, "--json")["id"]  # type: ignore[index]
    first = cli.json("events", "record", "--program", pid, "--member", member, "--name", "review.created",
                     "--attr", "stars=5", "--attr", "product=SOFA", "--json")  # fmt: skip
    assert first["points"] == 50 and first["attributes"] == {"stars": 5, "product": "SOFA"}  # type: ignore[index]
    second = cli.run("events", "record", "--program", pid, "--member", member, "--name", "review.created").stdout
    assert "earned 0 points" in second
    preview = cli.json("purchases", "preview", "--program", pid, "--member", member, "--total", "40.00",
                       "--line", "SOFA:1:40.00:sofa", "--occurred-at", next_saturday(), "--json")  # fmt: skip
    assert preview["points"] == 80  # type: ignore[index]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM purchases").fetchone()[0] == 0

    schema = json.loads(cli.run("rules", "schema").stdout)
    assert schema["$defs"]["rule"]["required"] == ["id", "trigger", "effects"]


def test_jobs_run_rules_awards_a_birthday_once(tmp_path: Path, treue_script):
    db = tmp_path / "b.db"
    cli = Cli(f"sqlite:///{db}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "B", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    document = tmp_path / "birthday.json"
    birthday = {"id": "birthday-bonus", "trigger": "birthday", "effects": [{"type": "fixed_points", "points": 500}]}
    document.write_text(json.dumps({"format": "treue.rules/1", "rules": [birthday]}), encoding="utf-8")
    cli.run("rules", "import", str(document), "--program", pid)
    today = datetime.now(ZoneInfo("Europe/Berlin")).date()
    born = today.replace(year=1990) if (today.month, today.day) != (2, 29) else today.replace(year=1992)
    cli.json("members", "enrol", "--program", pid, "--birthday", born.isoformat(), "--json")
    first = cli.json("jobs", "run", "rules", "--program", pid)
    assert first == first | {"job": "rules", "awarded": 1, "points": 500}  # type: ignore[operator]
    again = cli.json("jobs", "run", "rules")
    assert again == again | {"job": "rules", "awarded": 0, "already_done": 1}  # type: ignore[operator]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE name = 'birthday'").fetchone()[0] == 1
