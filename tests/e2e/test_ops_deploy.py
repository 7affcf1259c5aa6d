"""The Dockerfile, compose.yaml and the Caddy configuration cannot be built or run here (no container engine), so
they are checked against the code instead: every `treue` command they run parses with the real CLI, every TREUE_
setting they set is read somewhere in src/, the health checks hit routes the app has, the proxy points at the
API services, and the image runs as a non-root user with `treue` as its entrypoint."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
import yaml

from treue.cli import app

ROOT = Path(__file__).resolve().parents[2]
TREUE_SERVICES = {"migrate", "api-1", "api-2", "worker", "jobs"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def parses(args: list[str]) -> Any:
    """Resolve `treue ARGS` to its command and parse its options exactly as the CLI would (without running it)."""
    command: Any = typer.main.get_command(app)  # Typer's own (vendored) click classes
    ctx, name, rest = command.context_class(command, info_name="treue"), "treue", list(args)
    while hasattr(command, "get_command"):  # a group: the next word names a command in it
        assert rest, f"`treue {' '.join(args)}` names no command"
        name, *rest = rest
        sub = command.get_command(ctx, name)
        assert sub is not None, f"no command {name!r} in `treue {' '.join(args)}`"
        command, ctx = sub, sub.context_class(sub, info_name=name, parent=ctx)
    return command.make_context(name, rest, parent=ctx.parent)


def settings_read_by_the_code() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "src" / "treue").rglob("*.py"):
        found |= set(re.findall(r"TREUE_[A-Z0-9_]+", path.read_text()))
    return found


def test_compose_runs_real_commands_with_real_settings():
    services = compose()["services"]
    assert TREUE_SERVICES | {"postgres", "proxy"} <= set(services)
    known = settings_read_by_the_code()
    commands = {}
    for name in TREUE_SERVICES:
        service = services[name]
        assert service["image"] == "treue:latest" and service["build"] == "."
        ctx = parses(service["command"])
        commands[name] = ctx.info_name
        for setting in service["environment"]:
            assert setting in known, f"{name}: {setting} is read nowhere in src/treue"
        assert "TREUE_DATABASE_URL" in service["environment"]
        assert "postgres:5432" in service["environment"]["TREUE_DATABASE_URL"]
    assert commands == {"migrate": "migrate", "api-1": "serve", "api-2": "serve", "worker": "run", "jobs": "run"}
    # the replicas serve without the scheduler; one worker runs the periodic jobs
    for name in ("api-1", "api-2"):
        assert parses(services[name]["command"]).params["scheduler"] is False
    assert parses(services["jobs"]["command"]).params["jobs"] is True
    assert parses(services["worker"]["command"]).params["jobs"] is False
    # migrations finish before any process that uses the schema starts
    for name in TREUE_SERVICES - {"migrate"}:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_health_checks_and_proxy_point_at_what_exists():
    from treue.api.app import create_app
    from treue.store.database import make_engine

    paths = set(create_app(make_engine("sqlite://")).openapi()["paths"])
    services = compose()["services"]
    checked = " ".join(" ".join(services[name]["healthcheck"]["test"]) for name in ("api-1", "api-2"))
    used = set(re.findall(r"/(?:healthz|readyz)", checked))
    caddy = (ROOT / "deploy" / "Caddyfile").read_text()
    used |= set(re.findall(r"health_uri (\S+)", caddy))
    assert used == {"/healthz", "/readyz"} and used <= paths
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddy)
    assert upstreams is not None
    assert {u.split(":")[0] for u in upstreams.group(1).split()} == {"api-1", "api-2"}
    proxy = services["proxy"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    trusted = services["api-1"]["environment"]["TREUE_TRUSTED_PROXIES"]
    assert proxy["networks"]["treue"]["ipv4_address"] == trusted


def test_the_image_is_standard_and_runs_treue_as_a_non_root_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert "pip install -r requirements.lock" in dockerfile and "pip install --no-deps ." in dockerfile
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["treue"\]$', dockerfile, re.M)
    command = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert command is not None
    parses(yaml.safe_load(command.group(1)))
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored and "src" not in ignored
