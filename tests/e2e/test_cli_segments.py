"""`treue segments ...` as a real console script against a fresh SQLite file: a dynamic segment over RFM facts, a
static one imported from CSV, the `segments` job, recommendations, and an NPS survey."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli import TREUE, Cli


@pytest.fixture(scope="module")
def treue_script() -> Path:
    assert TREUE.exists(), f"the console script is missing at {TREUE} (pip install -e .)"
    return TREUE


def test_segments_recommendations_and_nps_from_the_shell(tmp_path: Path, treue_script):
    db = tmp_path / "segments.db"
    cli = Cli(f"sqlite:///{db}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "S", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    members = [cli.json("members", "enrol", "--program", pid, "--email", f"m{i}@example.org", "--json")
               for i in range(3)]  # fmt: skip
    cards = [m["card_number"] for m in members]  # type: ignore[index]
    cli.run("purchases", "record", "--program", pid, "--order-id", "O-1", "--total", "8.00", "--card", cards[0],
            "--line", "TEA:1:4.00", "--line", "HONEY:1:4.00")  # fmt: skip
    cli.run("purchases", "record", "--program", pid, "--order-id", "O-2", "--total", "4.00", "--card", cards[1],
            "--line", "TEA:1:4.00")  # fmt: skip

    spec = tmp_path / "buyers.json"
    spec.write_text(json.dumps({"code": "buyers", "name": "Buyers", "condition": "member.frequency >= 1"}))
    created = cli.run("segments", "create", "--program", pid, "--file", str(spec))
    assert created.stdout.strip() == "buyers  dynamic  2 members"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"code": "bad", "name": "Bad", "condition": "member.wealth > 1"}))
    refused = cli.run("segments", "create", "--program", pid, "--file", str(bad), code=1)
    assert refused.stderr.startswith("error: rule_invalid") and len(refused.stderr.strip().splitlines()) == 1

    static = tmp_path / "vip.json"
    static.write_text(json.dumps({"code": "vip", "name": "VIP", "kind": "static"}))
    cli.run("segments", "create", "--program", pid, "--file", str(static))
    listing = tmp_path / "vip.csv"
    listing.write_text(f"card_number\n{cards[2]}\n0000\n")
    imported = cli.run("segments", "import", "vip", "--program", pid, "--file", str(listing))
    assert "vip  1 members  +1 -0  unknown 1" in imported.stdout and "unknown: 0000" in imported.stderr
    facts = cli.json("segments", "facts", "--program", pid, "--member", members[2]["id"], "--json")  # type: ignore[index]
    assert facts["segments"] == ["vip"] and facts["facts"]["rfm"] == "111"  # type: ignore[index]
    assert "buyers  dynamic  2 members  member.frequency >= 1" in cli.run("segments", "list", "--program", pid).stdout

    job = cli.json("jobs", "run", "segments", "--program", pid)
    assert isinstance(job, dict) and job["segments"] == 1 and job["product_pairs"] == 2, job
    recommended = cli.json("segments", "recommend", "--program", pid, "--member", members[1]["id"], "--json")  # type: ignore[index]
    assert [p["sku"] for p in recommended["products"]] == ["HONEY"]  # type: ignore[index]

    survey = tmp_path / "survey.json"
    survey.write_text(json.dumps({"code": "nps", "name": {"de": "Umfrage", "en": "Survey"}}))
    cli.run("segments", "create-survey", "--program", pid, "--file", str(survey))
    for member, score in zip(members, (10, 8, 2), strict=True):
        cli.run("segments", "answer", "nps", "--program", pid, "--member", member["id"], "--score", str(score))  # type: ignore[index]
    again = cli.run("segments", "answer", "nps", "--program", pid, "--member", members[0]["id"], "--score", "9",  # type: ignore[index]
                    code=1)  # fmt: skip
    assert again.stderr.startswith("error: survey_answered")
    report = cli.run("segments", "nps", "nps", "--program", pid, "--by", "segment").stdout.splitlines()
    assert report[0] == "all  NPS 0  responses 3  promoters 1  passives 1  detractors 1"
    assert "buyers  NPS 50  responses 2  promoters 1  passives 1  detractors 0" in report
    assert "vip  NPS -100  responses 1  promoters 0  passives 0  detractors 1" in report
