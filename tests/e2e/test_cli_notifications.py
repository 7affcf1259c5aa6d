"""`treue notifications ...`, `treue worker run --once` and `treue jobs run notifications` as a user runs them,
against a fresh SQLite file and a real SMTP server (aiosmtpd) configured by TREUE_SMTP_URL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.test_cli import TREUE, Cli
from tests.integration.web_helpers import smtp_server


@pytest.fixture(scope="module")
def treue_script() -> Path:
    assert TREUE.exists(), f"the console script is missing at {TREUE} (pip install -e .)"
    return TREUE


def test_settings_templates_worker_mail_inbox_log_and_job(tmp_path: Path, treue_script):
    cli = Cli(f"sqlite:///{tmp_path / 'n.db'}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "Laden", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    shown = cli.run("notifications", "settings", "--program", pid, "--quiet-hours", "off", "--trigger",
                    "points_expiring", "--days", "14", "--days", "3").stdout  # fmt: skip
    assert "quiet hours: off" in shown and "days=14,3" in shown and "monthly_statement      on  marketing" in shown

    # Bad input: one line on stderr, exit 1.
    wrong = cli.run("notifications", "settings", "--program", pid, "--trigger", "nonsense", "--disable", code=1)
    assert wrong.stderr.startswith("error: invalid_input") and len(wrong.stderr.splitlines()) == 1
    unsafe = cli.run("notifications", "set-template", "--program", pid, "--trigger", "welcome", "--subject", "x",
                     "--text", "{{ ''.__class__.__mro__ }}", code=1)  # fmt: skip
    assert unsafe.stderr.startswith("error: template_unsafe") and "Traceback" not in unsafe.stderr
    cli.run("notifications", "set-template", "--program", pid, "--trigger", "welcome", "--locale", "de",
            "--subject", "Moin {{ member.first_name }}!", "--text", "Ihre Karte: {{ card_number }}")  # fmt: skip
    preview = cli.run("notifications", "preview", "--program", pid, "--trigger", "points_expiring", "--locale", "en",
                      "--data", '{"points": 300}').stdout  # fmt: skip
    assert preview.startswith("Subject: 300 points valid only until 2026-12-31")

    member = cli.json("members", "enrol", "--program", pid, "--email", "kim@example.org", "--first-name", "Kim",
                      "--consent", "email", "--json")["id"]  # type: ignore[index]  # fmt: skip
    with smtp_server() as (inbox, mailer):
        cli.env |= {"TREUE_SMTP_URL": f"smtp://127.0.0.1:{mailer.port}", "TREUE_MAIL_FROM": "laden@example.org",
                    "TREUE_PUBLIC_URL": "https://laden.example"}  # fmt: skip
        ran = cli.json("worker", "run", "--once")
        assert isinstance(ran, dict) and ran["notifications"]["sent"] == 2, ran
        subjects = sorted(m["Subject"] for m in inbox.messages)
        assert subjects == ["Bitte bestätigen Sie Ihre E-Mail-Adresse", "Moin Kim!"]
        assert all(m["From"] == "laden@example.org" for m in inbox.messages)
        confirm = next(m for m in inbox.messages if m["Subject"].startswith("Bitte"))
        assert re.search(r"https://laden\.example/api/v1/inbound/notifications/confirm/\S+",
                         confirm.get_body(("plain",)).get_content())  # type: ignore[union-attr]  # fmt: skip

    log = cli.run("notifications", "log", "--program", pid, "--channel", "email").stdout
    assert "welcome" in log and "email_confirmation" in log and log.count("sent") == 2
    assert cli.run("notifications", "inbox", "--program", pid, "--member", member).stdout.startswith("1 unread")
    consents = cli.json("notifications", "consent", "--program", pid, "--member", member, "--channel", "push",
                        "--grant")  # fmt: skip
    assert isinstance(consents, dict) and consents["channels"]["push"]["effective"] is True
    assert consents["channels"]["email"] == consents["channels"]["email"] | {"granted": True, "confirmed": False}
    job = cli.json("jobs", "run", "notifications", "--program", pid)
    assert isinstance(job, dict) and set(job) >= {"expiring", "available", "digests", "statements", "send"}
    assert cli.run("verify").returncode == 0
