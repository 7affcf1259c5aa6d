"""Real processes for the reliability tests: `treue serve` on a free port, and a private PostgreSQL cluster
(initdb into a temporary directory, run as the `postgres` user) that a test may restart without touching the
shared server."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

TREUE = Path(sys.executable).with_name("treue")
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg", "postgresql")


class ApiServer:
    """`treue serve --no-scheduler` as a child process; start, kill -9, start again on the same port."""

    def __init__(self, database_url: str, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "TREUE_DATABASE_URL": database_url, "TREUE_RATE_LIMIT_KEY": "0",
                    "TREUE_RATE_LIMIT_MEMBER": "0", "TREUE_LOG_LEVEL": "WARNING", **env}  # fmt: skip
        self.env.pop("TREUE_NATS_URL", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="treue-serve-", suffix=".log")[1])  # never a pipe: it could fill up

    def start(self, timeout: float = 30) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([str(TREUE), "serve", "--no-scheduler", "--port", str(self.port)],
                                            env=self.env, stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"treue serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("treue serve did not become healthy")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process:
            self.process.wait(10)

    def wait_exit(self, timeout: float = 10) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.unlink(missing_ok=True)


class PrivateCluster:
    """A throw-away PostgreSQL 15 cluster owned by `postgres`, on a free port, that tests may restart."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="treue-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def unavailable() -> str | None:
        if not (PG_BIN / "initdb").exists():
            return f"no PostgreSQL server binaries in {PG_BIN}"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root without runuser: cannot start a private cluster as postgres"
        return None

    def _run(self, *args: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w",
                  "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(AssertionError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Hammer:
    """A client thread that records purchases with idempotency keys as fast as it can, remembering every 2xx."""

    base: str
    token: str
    member_id: str
    now: str
    ok: dict[str, str] = field(default_factory=dict)  # idempotency key -> purchase id
    failed: dict[str, str] = field(default_factory=dict)  # idempotency key -> what went wrong
    stop: threading.Event = field(default_factory=threading.Event)
    statuses: dict[str, int] = field(default_factory=dict)

    def body(self, key: str) -> dict[str, Any]:
        return {"member_id": self.member_id, "external_order_id": key, "occurred_at": self.now, "total": "10.00",
                "currency": "EUR", "lines": [{"sku": "A", "quantity": 1, "unit_price": "10.00"}]}  # fmt: skip

    def send(self, client: httpx.Client, key: str) -> httpx.Response:
        return client.post(f"{self.base}/api/v1/purchases", json=self.body(key), timeout=10,
                           headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": key})  # fmt: skip

    def run(self) -> None:
        with httpx.Client() as client:
            while not self.stop.is_set():
                key = uuid.uuid4().hex
                try:
                    response = self.send(client, key)
                except httpx.HTTPError as error:
                    self.failed[key] = type(error).__name__
                    self.statuses[type(error).__name__] = self.statuses.get(type(error).__name__, 0) + 1
                    time.sleep(0.05)
                    continue
                self.statuses[str(response.status_code)] = self.statuses.get(str(response.status_code), 0) + 1
                if 200 <= response.status_code < 300:
                    self.ok[key] = response.json()["id"]
                else:
                    self.failed[key] = str(response.status_code)

    def wait_for_successes(self, more: int, timeout: float) -> None:
        target = len(self.ok) + more
        deadline = time.monotonic() + timeout
        while len(self.ok) < target:
            assert time.monotonic() < deadline, f"no progress: {self.statuses}"
            time.sleep(0.05)


def in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread
