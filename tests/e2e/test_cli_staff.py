"""`treue staff ...` as a real console script against a fresh SQLite file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.e2e.test_cli import TREUE, Cli


def test_staff_add_generates_or_prompts_for_a_password_and_refuses_bad_input(tmp_path: Path):
    assert TREUE.exists(), f"the console script is missing at {TREUE} (pip install -e .)"
    cli = Cli(f"sqlite:///{tmp_path / 's.db'}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "S", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]

    added = cli.run("staff", "add", "--program", pid, "--email", "Ann@Shop.Example", "--role", "manager")
    assert added.stdout.startswith("added ann@shop.example (manager)")
    password = added.stdout.split("password: ")[1].split()[0]
    assert len(password) >= 10

    typed = subprocess.run([str(TREUE), "staff", "add", "--program", pid, "--email", "p@shop.example", "--role",
                            "partner", "--partner", "acme", "--prompt", "--json"], env=cli.env, capture_output=True,
                           text=True, input="a-long-password\na-long-password\n", timeout=60)  # fmt: skip
    assert typed.returncode == 0, typed.stderr
    assert '"partner": "acme"' in typed.stdout and '"password": null' in typed.stdout

    for args, message in ((("--email", "x@shop.example", "--role", "admin"), "invalid_input: role must be one of"),
                          (("--email", "ann@shop.example", "--role", "support"), "conflict: a staff user with"),
                          (("--email", "y@shop.example", "--role", "partner"), "partner users, and only they"),
                          (("--email", "nope", "--role", "owner"), "is not an email address")):  # fmt: skip
        refused = cli.run("staff", "add", "--program", pid, *args, code=1)
        assert refused.stderr.startswith("error: ") and message in refused.stderr and "Traceback" not in refused.stderr

    listed = cli.run("staff", "list", "--program", pid).stdout.splitlines()
    assert listed == ["ann@shop.example  manager", "p@shop.example  partner  acme"]
