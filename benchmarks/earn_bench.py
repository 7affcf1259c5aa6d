"""Treue's earn benchmark: durable earn requests over HTTP against PostgreSQL, next to the raw earn.

`make bench` runs this. In one run it

1. creates a fresh PostgreSQL database, migrates it, and enrols a programme's members through the services;
2. counts the SQL statements one earn request sends (in-process, with a statement listener);
3. for each uvicorn worker count: starts Treue as a real server, drives POST /api/v1/purchases with wrk
   (benchmarks/earn.lua: 3 lines, unique order ids, an Idempotency-Key each) at increasing concurrency,
   then an open-loop run at a fixed rate (a paced Python client: latency from each request's scheduled
   send time, so a stalled server is not hidden by coordinated omission); optionally profiles a worker
   with py-spy;
4. compares earn throughput with N active purchase rules against the base rule only (--compare-rules,
   20 by default): 2 workers, wrk at 16 and 4 connections, a fresh server for each half;
5. runs pgbench with benchmarks/raw_earn.sql (one ledger insert, one balance update) on the same server;
6. checks every accepted earn made exactly one purchase and that every ledger invariant holds;
7. writes benchmarks/results/earn-<timestamp>.json and latest.json, and prints a summary.

The database is dropped at the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.metadata
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from sqlalchemy import Engine, event

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
# One API key drives the whole load: its rate limit is set out of reach (servers started here inherit it).
os.environ.setdefault("TREUE_RATE_LIMIT_KEY", str(10**9))
LUA = HERE / "earn.lua"
HEALTHZ_LUA = HERE / "healthz.lua"
RAW_SQL = HERE / "raw_earn.sql"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CATEGORIES = ("sofas", "tables", "lamps", "beds", "rugs", "chairs")
PROGRAM_SETTINGS = {  # as a furniture store runs it (the demo's settings): 1 point per euro, 14 days pending
    "earn_points": 1, "earn_per_amount": "1.00", "pending_days": 14, "expiry_policy": "rolling",
    "expiry_months": 24, "return_policy": "within_balance", "point_value": "0.01", "default_locale": "de",
}  # fmt: skip
TARGET_RATIO = 0.5
TARGET_P99_MS = 25.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the database ---------------------------------------------------------------------------------------
def pg_url(base: str, dbname: str) -> str:
    return base.rsplit("/", 1)[0] + "/" + dbname


def create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(engine: Engine, members: int, threads: int) -> tuple[UUID, list[str], str]:
    """A programme, `members` members enrolled through the member service, and a till (pos) API key."""
    from treue.services.keys import create_api_key
    from treue.services.members import EnrolMember, enrol_member
    from treue.services.programs import create_program
    from treue.store.migrate import migrate
    from treue.store.unit_of_work import SqlUnitOfWorkFactory

    migrate(engine)
    uow = SqlUnitOfWorkFactory(engine)
    now = datetime.now(UTC)
    program = create_program(uow(), "Bench Möbelhaus", "EUR", "Europe/Berlin", PROGRAM_SETTINGS, now, actor="bench")
    program_id = UUID(program["id"])

    def enrol(i: int) -> str:
        command = EnrolMember(external_ref=f"bench-{i:06d}", first_name="Kim", last_name=f"Muster{i}",
                              email=f"kim.muster{i}@example.com", consents={"email": i % 3 == 0},
                              consent_source="bench")  # fmt: skip
        return str(enrol_member(uow(), program_id, command, now)["id"])

    with ThreadPoolExecutor(threads) as pool:
        member_ids = list(pool.map(enrol, range(members), chunksize=64))
    key = create_api_key(uow(), program_id, "pos", "bench till", now)["key"]
    return program_id, member_ids, key


RULE_CONDITION = 'purchase.total >= {threshold} && purchase.channel == "store" && now.weekday >= 1'
AWARDING_THRESHOLD = 1000  # minor units: EUR 10, below nearly every 3-line cart earn.lua sends
UNREACHABLE_THRESHOLD = 10_000_000  # EUR 100,000: no cart reaches it
RULE_POINTS = 5
# Rules apply by the purchase's occurred_at, which earn.lua and purchase_body fix at 2026-11-23T10:00Z:
# the rules are valid from before it (create_rule takes a past valid_from), or none would ever apply.
RULES_VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)


def rule_definition(n: int, awarding: bool) -> dict[str, Any]:
    """A purchase rule of three comparisons and a fixed-points effect (as benchmarks/rules_bench.py builds)."""
    threshold = AWARDING_THRESHOLD if awarding else UNREACHABLE_THRESHOLD
    return {"id": f"r{n:02d}", "name": f"bench rule {n}", "trigger": "purchase",
            "condition": RULE_CONDITION.format(threshold=threshold), "priority": n,
            "effects": [{"type": "fixed_points", "points": RULE_POINTS}]}  # fmt: skip


def create_rules(engine: Engine, program_id: UUID, count: int) -> dict[str, Any]:
    """`count` active purchase rules through the rule service; only the first matches typical carts."""
    from treue.services.rules import create_rule
    from treue.store.unit_of_work import SqlUnitOfWorkFactory

    uow = SqlUnitOfWorkFactory(engine)
    now = datetime.now(UTC)
    for n in range(count):
        create_rule(uow(), program_id, rule_definition(n, awarding=n == 0), now, valid_from=RULES_VALID_FROM,
                    actor="bench")  # fmt: skip
    return {"rules": count, "awarding": min(count, 1), "comparisons_per_rule": 3,
            "condition": RULE_CONDITION, "awarding_threshold_minor": AWARDING_THRESHOLD,
            "other_threshold_minor": UNREACHABLE_THRESHOLD, "points_per_award": RULE_POINTS,
            "valid_from": RULES_VALID_FROM.isoformat()}  # fmt: skip


def count_statements(engine: Engine, key: str, member_id: str, prefix: str = "count") -> dict[str, Any]:
    """The SQL one earn request sends, counted in-process (the app's own engine, a statement listener)."""
    from fastapi.testclient import TestClient

    from treue.api.app import create_app

    statements: list[str] = []
    transactions = Counter[str]()

    def on_execute(_conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, executemany: bool) -> None:
        rows = len(params) if executemany and isinstance(params, list | tuple) else 1
        statements.append(" ".join(statement.split())[:160] + (f"  [x{rows} rows]" if rows > 1 else ""))

    def on_begin(_conn: Any) -> None:
        transactions["begin"] += 1

    def on_commit(_conn: Any) -> None:
        transactions["commit"] += 1

    def on_rollback(_conn: Any) -> None:
        transactions["rollback"] += 1

    listeners: dict[str, Callable[..., None]] = {
        "before_cursor_execute": on_execute,
        "begin": on_begin,
        "commit": on_commit,
        "rollback": on_rollback,
    }
    for name, listener in listeners.items():
        event.listen(engine, name, listener)
    try:
        client = TestClient(create_app(engine))
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        for i in range(3):  # the first ones also fill the API-key and programme caches
            statements.clear()
            transactions.clear()
            order = f"{prefix}-{i}"
            body = purchase_body(random.Random(i), member_id, order)
            response = client.post("/api/v1/purchases", content=body, headers={**headers, "Idempotency-Key": order})
            assert response.status_code == 201, response.text
    finally:
        for name, listener in listeners.items():
            event.remove(engine, name, listener)
    return {
        "statements": len(statements),
        "transactions": dict(transactions),
        "round_trips": len(statements) + transactions["begin"] + transactions["commit"] + transactions["rollback"],
        "sql": statements,
        "note": "steady state (API key and programme cached); psycopg sends BEGIN and COMMIT as round trips",
    }


# -- the request body (the same shape earn.lua sends) ----------------------------------------------------
def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def purchase_body(rng: random.Random, member_id: str, order: str) -> bytes:
    lines, total = [], 0
    for _ in range(3):
        quantity, unit = rng.randint(1, 3), rng.randint(199, 24999)
        total += quantity * unit
        lines.append({"sku": f"SKU-{rng.randint(1, 20000):05d}", "quantity": quantity, "unit_price": _money(unit),
                      "category": rng.choice(CATEGORIES)})  # fmt: skip
    body = {"member_id": member_id, "external_order_id": order, "occurred_at": "2026-11-23T10:00:00Z",
            "total": _money(total), "currency": "EUR", "store": f"S{rng.randint(1, 40):03d}", "lines": lines}  # fmt: skip
    return json.dumps(body, separators=(",", ":")).encode()


# -- CPU accounting ---------------------------------------------------------------------------------------
@dataclass
class CpuSample:
    at: float
    treue: float  # seconds of CPU of the server's process group (uvicorn and its workers)
    postgres: float  # PostgreSQL's background processes and the benchmark database's backends
    children: float  # reaped children of this process: wrk, pgbench
    own: float  # this process (the paced load generator, the CPU meter)
    busy: float  # the whole machine, from /proc/stat
    total: float


def machine_sample(treue: float = 0.0, postgres: float = 0.0) -> CpuSample:
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    total = sum(cpu[:8])
    idle = cpu[3] + cpu[4]
    kids, own = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    return CpuSample(time.monotonic(), treue, postgres, kids.ru_utime + kids.ru_stime, own.ru_utime + own.ru_stime,
                     (total - idle) / CLK_TCK, total / CLK_TCK)  # fmt: skip


class CpuMeter:
    """CPU used during a run by Treue's processes and by PostgreSQL's (its background processes and the
    client backends of the benchmark database; other databases' backends count as other load).

    Processes are sampled four times a second, so one that exits during the run (a pool's overflow
    connection, pgbench's backends) keeps what it had used by its last sample.
    """

    def __init__(self, server_pgid: int | None, dbname: str) -> None:
        self.server_pgid = server_pgid
        self.dbname = dbname
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _scan(self) -> dict[int, tuple[str, int]]:
        procs: dict[int, tuple[str, int, list[str]]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                    data = f.read()
                    close = data.rfind(")")
                    fields = data[close + 2 :].split()
                    procs[int(entry)] = (data[data.find("(") + 1 : close], int(fields[1]), fields)
        found = {}
        for pid, (comm, ppid, fields) in procs.items():
            ticks = int(fields[11]) + int(fields[12])
            if self.server_pgid is not None and int(fields[2]) == self.server_pgid:
                found[pid] = ("treue", ticks)
            elif comm == "postgres" and (procs.get(ppid, ("",))[0] != "postgres" or _backend_of(pid, self.dbname)):
                found[pid] = ("postgres", ticks)
        return found

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            self._last.update(self._scan())

    def __enter__(self) -> CpuMeter:
        self._first = self._scan()
        self._last = dict(self._first)
        self._before = machine_sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._last.update(self._scan())
        used = {"treue": 0, "postgres": 0}
        for pid, (kind, ticks) in self._last.items():
            first = self._first.get(pid)
            used[kind] += ticks - (first[1] if first and first[0] == kind else 0)
        self._after = machine_sample(used["treue"] / CLK_TCK, used["postgres"] / CLK_TCK)

    def use(self, requests: int) -> dict[str, Any]:
        return cpu_use(self._before, self._after, requests)


def _backend_of(pid: int, dbname: str) -> bool:
    """Is this postgres process a background process, or a client backend of `dbname`?"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            title = f.read().decode(errors="replace")
    except OSError:
        return False
    is_client = ("(" in title and ")" in title) or "[local]" in title
    return not is_client or f" {dbname} " in title


def background_load(seconds: float = 2.0) -> float:
    """Cores busy on the machine while this benchmark does nothing (other jobs distort every figure)."""
    before = machine_sample()
    time.sleep(seconds)
    after = machine_sample()
    return round((after.busy - before.busy) / (after.at - before.at), 2)


def cpu_use(before: CpuSample, after: CpuSample, requests: int) -> dict[str, Any]:
    elapsed = after.at - before.at
    parts = {
        "treue": after.treue - before.treue,
        "postgres": after.postgres - before.postgres,
        "load_generator": (after.children - before.children) + (after.own - before.own),
    }
    busy = after.busy - before.busy
    parts["other"] = max(busy - sum(parts.values()), 0.0)
    out: dict[str, Any] = {"elapsed_s": round(elapsed, 2),
                           "machine_busy_pct": round(100 * busy / max(after.total - before.total, 1e-9), 1)}  # fmt: skip
    out["cores_used"] = {k: round(v / elapsed, 2) for k, v in parts.items()}
    if requests:
        out["cpu_ms_per_request"] = {k: round(1000 * v / requests, 3) for k, v in parts.items()}
    return out


def dbname_of(url: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(url).get("dbname"))


def wal_position(url: str) -> int:
    """The server's WAL insert position in bytes (WAL per request = write volume, all databases included)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint").fetchone()
        return int(row[0]) if row else 0


# -- the server -------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """Treue under uvicorn, `--workers N`, as its own process group (so one signal stops every worker)."""

    def __init__(self, url: str, workers: int, pool_size: int | None, log_file: Path, stock: bool = False) -> None:
        self.port = free_port()
        self.workers = workers
        env = {**os.environ, "TREUE_DATABASE_URL": url}
        if pool_size:
            env["TREUE_DB_POOL_SIZE"] = str(pool_size)
        self.log_file = log_file
        if stock:  # uvicorn's own --workers path: its listener loses TCP_NODELAY (see serve.py)
            command = [sys.executable, "-m", "uvicorn", "app_factory:app", "--app-dir", str(HERE), "--host",
                       "127.0.0.1", "--port", str(self.port), "--workers", str(workers), "--log-level", "warning",
                       "--no-access-log"]  # fmt: skip
        else:
            command = [sys.executable, str(HERE / "serve.py"), "--port", str(self.port), "--workers", str(workers)]
        with log_file.open("wb") as out:
            self.proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                # Every worker must be up: ask more times than there are workers.
                for _ in range(4 * self.workers):
                    with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                        assert response.status == 200
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not answer /healthz in time:\n" + self.output())

    def worker_pids(self) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                    data = f.read()
                    fields = data[data.rfind(")") + 2 :].split()
                    if int(fields[2]) == self.proc.pid and int(entry) != self.proc.pid:
                        found.append(int(entry))
        return found or [self.proc.pid]

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


# -- load: wrk (closed loop, as fast as it goes) -----------------------------------------------------------
def run_wrk(server: Server, connections: int, seconds: float, members_file: Path | None, key: str, tag: str,
            threads: int, url: str) -> dict[str, Any]:  # fmt: skip
    """Earn requests (or GET /healthz without a members file) at `connections` concurrency."""
    command = ["wrk", "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{seconds:g}s",
               "--timeout", "10s"]  # fmt: skip
    if members_file is None:
        command += ["-s", str(HEALTHZ_LUA), server.url + "/healthz"]
    else:
        command += ["-s", str(LUA), server.url, "--", str(members_file), key, tag]
    wal_before = wal_position(url)
    with CpuMeter(server.proc.pid, dbname_of(url)) as meter:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    wal_after = wal_position(url)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    seconds_run = raw["duration_us"] / 1e6
    errors = raw["errors"]
    failed = errors["status"]  # responses with status >= 400
    ok = raw["requests"] - failed
    lat = raw["latency_us"]
    return {
        "tag": tag, "workers": server.workers, "connections": connections, "duration_s": round(seconds_run, 2),
        "requests": raw["requests"], "ok": ok, "non_2xx": failed,
        "socket_errors": {k: v for k, v in errors.items() if k != "status"},
        "req_per_s": round(ok / seconds_run, 1),
        "latency_ms": {k: round(v / 1000, 2) for k, v in lat.items()},
        "cpu": meter.use(raw["requests"]),
        "wal_bytes_per_request": round((wal_after - wal_before) / max(raw["requests"], 1)),
    }  # fmt: skip


# -- load: a paced open-loop client (a fixed rate; latency from the scheduled send time) ------------------
async def _paced(port: int, requests: list[tuple[str, bytes]], rate: float, max_connections: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened = 0
    slots = asyncio.Semaphore(max_connections)
    from_schedule: list[float] = []
    service: list[float] = []
    statuses = Counter[int]()
    errors = Counter[str]()
    accepted: list[str] = []
    retried = 0

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        nonlocal opened
        opened += 1
        return await asyncio.open_connection("127.0.0.1", port)

    async def exchange(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], payload: bytes) -> int:
        conn[1].write(payload)
        head = await conn[0].readuntil(b"\r\n\r\n")
        match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        await conn[0].readexactly(int(match.group(1)) if match else 0)
        return int(head[9:12])

    async def one(order: str, payload: bytes, scheduled: float) -> None:
        nonlocal retried
        async with slots:
            reused = bool(idle)
            conn = idle.pop() if idle else await connect()
            sent = loop.time()
            try:
                try:
                    status = await exchange(conn, payload)
                except asyncio.IncompleteReadError as error:
                    # The server closed an idle keep-alive connection as the request went out (uvicorn
                    # does after 5 s): send it again on a new one, as HTTP clients do. The same
                    # Idempotency-Key makes this safe even had the first attempt been processed.
                    if not reused or error.partial:
                        raise
                    conn[1].close()
                    retried += 1
                    conn = await connect()
                    status = await exchange(conn, payload)
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                errors[type(error).__name__] += 1
                conn[1].close()
                return
            finished = loop.time()
            idle.append(conn)
        statuses[status] += 1
        if 200 <= status < 300:
            accepted.append(order)
            from_schedule.append(finished - scheduled)
            service.append(finished - sent)

    for _ in range(min(32, max_connections)):
        idle.append(await connect())
    start = loop.time() + 0.1
    tasks = []
    for i, (order, payload) in enumerate(requests):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(order, payload, scheduled)))
    lag = loop.time() - (start + (len(requests) - 1) / rate)
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    for _reader, writer in idle:
        writer.close()
    return {"from_schedule": from_schedule, "service": service, "statuses": statuses, "errors": errors,
            "accepted": accepted, "elapsed": elapsed, "connections_opened": opened, "retried_stale": retried,
            "scheduler_lag_ms": round(1000 * max(lag, 0.0), 2)}  # fmt: skip


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def run_paced(server: Server, rate: float, seconds: float, member_ids: list[str], key: str, tag: str,
              url: str) -> dict[str, Any]:  # fmt: skip
    rng = random.Random(4242)
    host = f"127.0.0.1:{server.port}"
    requests = []
    for i in range(int(rate * seconds)):
        order = f"{tag}-{i}"
        body = purchase_body(rng, rng.choice(member_ids), order)
        head = (f"POST /api/v1/purchases HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {key}\r\nIdempotency-Key: {order}\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
        requests.append((order, head.encode() + body))
    with CpuMeter(server.proc.pid, dbname_of(url)) as meter:
        raw = asyncio.run(_paced(server.port, requests, rate, max_connections=256))
    lat, svc = raw["from_schedule"], raw["service"]
    ok = len(raw["accepted"])
    return {
        "tag": tag, "workers": server.workers, "offered_req_per_s": rate, "requests": len(requests), "ok": ok,
        "non_2xx": sum(n for s, n in raw["statuses"].items() if not 200 <= s < 300),
        "errors": dict(raw["errors"]), "duration_s": round(raw["elapsed"], 2),
        "achieved_req_per_s": round(ok / raw["elapsed"], 1),
        "latency_ms": {f"p{p:g}": round(1000 * percentile(lat, p), 2) for p in (50, 90, 99, 99.9)}
        | {"max": round(1000 * max(lat, default=float("nan")), 2), "mean": round(1000 * statistics.fmean(lat), 2)},
        "service_time_ms": {f"p{p:g}": round(1000 * percentile(svc, p), 2) for p in (50, 99)},
        "connections_opened": raw["connections_opened"], "retried_on_stale_connection": raw["retried_stale"],
        "scheduler_lag_ms": raw["scheduler_lag_ms"],
        "cpu": meter.use(len(requests)),
        "_accepted": raw["accepted"],
    }  # fmt: skip


# -- profiling one worker with py-spy ----------------------------------------------------------------------
def py_spy() -> str | None:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


def run_profile(server: Server, seconds: float, connections: int, members_file: Path, key: str, out: Path,
                url: str) -> dict[str, Any]:  # fmt: skip
    """Sample the (single) worker with py-spy --gil while wrk drives it: where the Python CPU goes."""
    exe = py_spy()
    assert exe
    pid = server.worker_pids()[0]
    raw_file = out.with_suffix(".txt")
    spy = subprocess.Popen([exe, "record", "--pid", str(pid), "--gil", "--nonblocking", "--rate", "250", "--format", "raw",
                            "--duration", f"{seconds + 1:g}", "--output", str(raw_file)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    time.sleep(1.0)
    wrk = run_wrk(server, connections, seconds, members_file, key, "prof", 2, url)
    _, err = spy.communicate(timeout=60)
    if spy.returncode != 0 or not raw_file.exists():
        return {"error": f"py-spy failed ({spy.returncode}): {err.decode(errors='replace')[-800:]}", "wrk": wrk}
    summary = summarise_profile(raw_file.read_text())
    summary["raw_file"] = str(raw_file.relative_to(ROOT))
    summary["wrk"] = {k: wrk[k] for k in ("connections", "req_per_s", "latency_ms")}
    return summary


FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _area(path: str) -> str:
    """A frame's file (py-spy shortens site-packages paths) as a package: sqlalchemy, treue, stdlib:asyncio."""
    path = path.split("site-packages/", 1)[-1]
    if "/src/treue/" in path or path.startswith("treue/"):
        return "treue"
    if "/lib/python3" in path:
        path = path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    top = path.split("/", 1)[0].removesuffix(".py")
    return top if top in _third_party() else f"stdlib:{top}"


@functools.cache
def _third_party() -> frozenset[str]:
    return frozenset(importlib.metadata.packages_distributions())


def summarise_profile(raw: str, top: int = 25) -> dict[str, Any]:
    """py-spy's raw output (folded stacks) into self and inclusive shares by function and by package."""
    total = 0
    own: Counter[str] = Counter()
    phases: Counter[str] = Counter()
    by_area: Counter[str] = Counter()
    by_module: Counter[str] = Counter()
    treue_inclusive: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = []
        for frame in stack.split(";"):
            match = FRAME.match(frame)
            if match:
                file = match["file"]
                short = file.split("site-packages/", 1)[-1].split("/src/", 1)[-1]
                frames.append((f"{match['func']} ({short})", _area(file), short))
        if not frames:
            continue
        own[frames[-1][0]] += count
        by_area[frames[-1][1]] += count
        by_module[frames[-1][2]] += count
        names = [name for name, _, _ in frames]
        if any(name.startswith("WorkerThread.run (anyio") for name in names):
            phase = "worker thread (the sync endpoint)"
        elif any(name.startswith("BaseEventLoop._run_once") for name in names):
            phase = "event loop (HTTP, routing, validation, serialisation)"
        else:
            phase = "unattributed (a partial stack)"
        phases[f"{phase}: {frames[-1][1]}"] += count
        phases[phase] += count
        for name in {name for name, area, _ in frames if area == "treue"}:
            treue_inclusive[name] += count

    def share(counter: Counter[str], n: int) -> list[dict[str, Any]]:
        return [{"name": k, "pct": round(100 * v / total, 1)} for k, v in counter.most_common(n)]

    return {"samples": total, "self_by_package": share(by_area, 20), "self_by_module": share(by_module, top),
            "self_by_function": share(own, top),
            "by_thread_and_package": share(phases, 40), "inclusive_treue": share(treue_inclusive, top)}  # fmt: skip


# -- pgbench: the raw earn ------------------------------------------------------------------------------------
def raw_setup_sql() -> list[str]:
    """The setup statements written in raw_earn.sql's header (one source of truth)."""
    text_, on = [], False
    for line in RAW_SQL.read_text().splitlines():
        if line.startswith("-- Setup:"):
            on, line = True, line.removeprefix("-- Setup:")
        elif line.startswith("-- Run:"):
            break
        elif on:
            line = line.removeprefix("--")
        if on:
            text_.append(line.strip())
    return [s.strip() for s in " ".join(text_).split(";") if s.strip()]


def run_pgbench(url: str, dbname: str, clients: int, seconds: int) -> dict[str, Any]:
    parsed = psycopg.conninfo.conninfo_to_dict(url)
    command = ["pgbench", "-n", "-f", str(RAW_SQL), "-c", str(clients), "-j", str(min(2, clients)), "-T", str(seconds),
               "-h", str(parsed.get("host", "127.0.0.1")), "-p", str(parsed.get("port", 5432)),
               "-U", str(parsed.get("user", "postgres")), dbname]  # fmt: skip
    env = {**os.environ, **({"PGPASSWORD": str(parsed["password"])} if parsed.get("password") else {})}
    wal_before = wal_position(url)
    with CpuMeter(None, dbname) as meter:
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wal_after = wal_position(url)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{done.stdout}\n{done.stderr}")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    processed = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    assert tps and processed, done.stdout
    count = int(processed.group(1))
    return {
        "clients": clients, "threads": min(2, clients), "duration_s": seconds, "tps": round(float(tps.group(1)), 1),
        "transactions": count, "failed": int(failed.group(1)) if failed else 0,
        "latency_avg_ms": float(latency.group(1)) if latency else None, "cpu": meter.use(count),
        "wal_bytes_per_request": round((wal_after - wal_before) / max(count, 1)),
        "command": "pgbench " + " ".join(command[1:]).replace(str(ROOT) + "/", ""),
    }  # fmt: skip


def settle_database(url: str) -> None:
    """VACUUM ANALYZE and CHECKPOINT: no autovacuum of freshly loaded tables, nor the burst of full-page
    writes after a checkpoint, lands in the middle of a measured run."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            log("(no CHECKPOINT: the benchmark role may not; a checkpoint may fall inside a run)")


# -- correctness -------------------------------------------------------------------------------------------------
def count_orders(url: str, prefix: str, settle: float = 5.0) -> int:
    """Purchases whose order id starts with `prefix`, once requests still in flight have finished."""
    last, stable_since, deadline = -1, time.monotonic(), time.monotonic() + settle
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM purchases WHERE external_order_id LIKE %s", (prefix + "%",)
            ).fetchone()
            n = int(row[0]) if row else 0
            if n != last:
                last, stable_since = n, time.monotonic()
            elif time.monotonic() - stable_since > 0.5 or time.monotonic() > deadline:
                return n
            time.sleep(0.1)


def check_ledger(engine: Engine, url: str, program_id: UUID) -> dict[str, Any]:
    from treue.services.verify import verify
    from treue.store.unit_of_work import SqlUnitOfWorkFactory

    started = time.monotonic()
    violations = verify(SqlUnitOfWorkFactory(engine)(read_only=True), program_id)
    with psycopg.connect(url, autocommit=True) as conn:

        def one(sql: str) -> int:
            row = conn.execute(sql).fetchone()
            return int(row[0]) if row and row[0] is not None else 0

        counts = {
            "purchases": one("SELECT count(*) FROM purchases"),
            "distinct_orders": one("SELECT count(DISTINCT (partner, external_order_id)) FROM purchases"),
            "earn_transfers": one("SELECT count(*) FROM transfers WHERE kind = 'earn'"),
            "purchases_without_earn": one(
                "SELECT count(*) FROM purchases p WHERE NOT EXISTS (SELECT 1 FROM transfers t WHERE "
                "t.program_id = p.program_id AND t.purchase_id = p.id AND t.kind = 'earn')"),
            "idempotency_records": one("SELECT count(*) FROM idempotency_keys"),
            "points_earned": one("SELECT sum(points_earned) FROM purchases"),
            "member_balances": one("SELECT sum(balance) FROM accounts WHERE member_id IS NOT NULL"),
        }  # fmt: skip
    return {"violations": [str(v) for v in violations], "counts": counts,
            "seconds": round(time.monotonic() - started, 1)}  # fmt: skip


# -- the machine ---------------------------------------------------------------------------------------------------
def machine_info(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:

        def setting(name: str) -> str:
            row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
            return str(row[0]) if row else "?"

        version_row = conn.execute("SELECT version()").fetchone()
        pg = {"version": version_row[0] if version_row else "?"} | {
            name: setting(name) for name in ("server_version", "fsync", "synchronous_commit", "wal_sync_method",
                                             "shared_buffers", "max_connections", "commit_delay", "wal_level",
                                             "autovacuum", "full_page_writes")
        }  # fmt: skip
    cpu_model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu_model = next((x.split(":", 1)[1].strip() for x in f if x.startswith("model name")), "?")
    packages: dict[str, str | None] = {}
    for name in ("fastapi", "starlette", "uvicorn", "pydantic", "sqlalchemy", "psycopg", "orjson", "uvloop",
                 "httptools"):  # fmt: skip
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True)
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return {
        "nproc": os.cpu_count(), "cpu_model": cpu_model, "kernel": platform.release(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(), "packages": packages, "postgres": pg,
        "wrk": (wrk_version.stdout + wrk_version.stderr).split("\n", 1)[0].strip(),
        "treue_commit": commit.stdout.strip() + ("+dirty-src" if dirty.stdout.strip() else ""),
    }  # fmt: skip


# -- earn with N rules vs the base rule only ----------------------------------------------------------------
def awarded_by_rules(url: str, prefix: str) -> dict[str, int]:
    """Purchases of a run whose points exceed the base rule's (1 point per euro) by a rule's award."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE points_earned >= total_minor / 100 + %s) FROM purchases "
            "WHERE external_order_id LIKE %s",
            (RULE_POINTS, prefix + "%"),
        ).fetchone()
    return {"purchases": int(row[0]) if row else 0, "awarded_by_a_rule": int(row[1]) if row else 0}


def compare_rules(args: argparse.Namespace, engine: Engine, url: str, program_id: UUID, members_file: Path,
                  key: str, member_id: str, workdir: Path, servers: list[Server]) -> dict[str, Any]:  # fmt: skip
    """The same wrk runs on the same database and server settings: first with the base rule only, then
    with `args.compare_rules` active rules. Each half gets a fresh server (so the rule-set cache starts
    empty and holds the current rules) and its own warm-up."""
    workers = args.compare_workers
    levels = [int(x) for x in args.compare_connections.split(",") if x]
    phases: dict[str, dict[str, Any]] = {}
    for name in ("base_rule_only", f"{args.compare_rules}_rules"):
        if name != "base_rule_only":
            log(f"creating {args.compare_rules} active purchase rules through the rule service (1 awarding)")
            phases[name] = {"setup": create_rules(engine, program_id, args.compare_rules)}
            phases[name]["statements_per_earn"] = count_statements(engine, key, member_id, prefix="count-rules")
        else:
            phases[name] = {"setup": {"rules": 0}}
        settle_database(url)
        server = Server(url, workers, args.pool_size, workdir / f"server-compare-{name}.log", args.stock_uvicorn)
        servers.append(server)
        server.wait_ready()
        short = "r0" if name == "base_rule_only" else f"r{args.compare_rules}"
        run_wrk(server, 16, args.warmup, members_file, key, f"{short}warm", 2, url)
        runs = []
        for connections in levels:
            tag = f"{short}w{workers}c{connections}"
            run = run_wrk(server, connections, args.compare_duration, members_file, key, tag, 2, url)
            stored = count_orders(url, tag + "-")
            run["purchases_stored"] = stored
            run["in_flight_at_stop"] = stored - run["ok"]
            run["check"] = "ok" if 0 <= stored - run["ok"] <= connections else "MISMATCH"
            run["rules"] = phases[name]["setup"]["rules"]
            run |= awarded_by_rules(url, tag + "-")
            runs.append(run)
            lat = run["latency_ms"]
            log(f"  {name:>15} {workers}w c={connections:<3} {run['req_per_s']:8.1f} req/s  p50 {lat['p50']:6.2f} ms  "
                f"p99 {lat['p99']:7.2f} ms  non-2xx {run['non_2xx']}  awarded by a rule {run['awarded_by_a_rule']}"
                f"/{run['purchases']}  [{run['check']}]")  # fmt: skip
        server.stop()
        phases[name]["runs"] = runs
    base, ruled = phases["base_rule_only"]["runs"], phases[f"{args.compare_rules}_rules"]["runs"]
    table = []
    for b, r in zip(base, ruled, strict=True):
        table.append({
            "connections": b["connections"],
            "base_rule_only": {"req_per_s": b["req_per_s"], "p50_ms": b["latency_ms"]["p50"],
                               "p99_ms": b["latency_ms"]["p99"]},
            f"{args.compare_rules}_rules": {"req_per_s": r["req_per_s"], "p50_ms": r["latency_ms"]["p50"],
                                            "p99_ms": r["latency_ms"]["p99"]},
            "relative_throughput": round(r["req_per_s"] / b["req_per_s"], 3) if b["req_per_s"] else None,
        })  # fmt: skip
    return {
        "config": {"workers": workers, "connections": levels, "seconds_per_level": args.compare_duration,
                   "warmup_s": args.warmup, "rules": args.compare_rules,
                   "order": "base rule only first, then the rules are created and a fresh server is started"},
        "phases": phases, "table": table,
    }  # fmt: skip


# -- the run --------------------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pg", default=os.environ.get("TREUE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
                   help="an admin URL of the PostgreSQL server (a database is created and dropped there)")  # fmt: skip
    p.add_argument("--members", type=int, default=10_000)
    p.add_argument("--workers", default="1,2", help="uvicorn worker counts to compare, e.g. 1,2")
    p.add_argument("--connections", default="1,4,16,32,64", help="wrk concurrency levels")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk level")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per server start")
    p.add_argument("--healthz-duration", type=float, default=5.0, help="seconds of GET /healthz per worker count")
    p.add_argument("--rate", type=float, default=200.0, help="the paced run's requests per second")
    p.add_argument("--rate-duration", type=float, default=15.0)
    p.add_argument("--pgbench-clients", type=int, default=16)
    p.add_argument("--pgbench-duration", type=int, default=20)
    p.add_argument("--pool-size", type=int, default=None, help="TREUE_DB_POOL_SIZE per worker (default: Treue's)")
    p.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True,
                   help="profile the 1-worker server with py-spy (if installed) during an extra wrk run")  # fmt: skip
    p.add_argument("--profile-duration", type=float, default=12.0)
    p.add_argument(
        "--stock-uvicorn",
        action="store_true",
        help="run `uvicorn --workers N` as shipped (its listener loses TCP_NODELAY: uvicorn#3149)",
    )
    p.add_argument("--rules", type=int, default=0,
                   help="after seeding, create N active purchase rules (3 comparisons each, 1 matching typical carts)"
                   " for the whole run (the --compare-rules comparison is then skipped)")  # fmt: skip
    p.add_argument("--compare-rules", type=int, default=20, metavar="N",
                   help="compare earn throughput with N active rules vs the base rule only (0: skip)")  # fmt: skip
    p.add_argument("--compare-workers", type=int, default=2)
    p.add_argument("--compare-connections", default="16,4", help="wrk concurrency levels of the rules comparison")
    p.add_argument("--compare-duration", type=float, default=10.0, help="seconds per level of the rules comparison")
    p.add_argument("--keep", action="store_true", help="keep the benchmark database")
    p.add_argument("--quick", action="store_true", help="a smoke run: 1,000 members, short levels")
    args = p.parse_args()
    if args.quick:
        args.members, args.duration, args.warmup, args.rate_duration = 1000, 3.0, 1.0, 5.0
        args.pgbench_duration, args.profile_duration, args.connections = 5, 4.0, "1,16"
        args.healthz_duration, args.compare_duration, args.compare_connections = 2.0, 3.0, "16"
    return args


def main() -> int:
    args = parse_args()
    from treue.store.database import make_engine

    for tool in ("wrk", "pgbench"):
        if not shutil.which(tool):
            print(f"{tool} is not installed: run `make bench-deps`", file=sys.stderr)
            return 2
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    dbname = f"treue_bench_{stamp.lower()}"
    url = pg_url(args.pg, dbname)
    worker_counts = [int(x) for x in args.workers.split(",") if x]
    levels = [int(x) for x in args.connections.split(",") if x]
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result: dict[str, Any] = {"started_at": stamp, "database": dbname}
    result["background_cores_before"] = background_load()
    if result["background_cores_before"] > 0.2:
        log(f"WARNING: {result['background_cores_before']} cores are busy before the benchmark starts: "
            "other jobs on this machine will lower every figure")  # fmt: skip
    create_database(args.pg, dbname)
    engine = make_engine(url, pool_size=8)
    servers: list[Server] = []
    workdir = Path(tempfile.mkdtemp(prefix="treue-bench-"))
    try:
        result["machine"] = machine_info(url)
        log(f"database {dbname}: migrating and enrolling {args.members:,} members through the member service")
        t0 = time.monotonic()
        program_id, member_ids, key = seed(engine, args.members, threads=4)
        result["seed"] = {"members": len(member_ids), "seconds": round(time.monotonic() - t0, 1), "via": "services"}
        log(f"seeded in {result['seed']['seconds']} s")
        if args.rules:
            log(f"creating {args.rules} active purchase rules through the rule service")
            result["rules"] = create_rules(engine, program_id, args.rules)
        members_file = workdir / "members.txt"
        members_file.write_text("\n".join(member_ids) + "\n")
        result["statements_per_earn"] = count_statements(engine, key, member_ids[0])
        log(f"one earn request: {result['statements_per_earn']['statements']} SQL statements, "
            f"{result['statements_per_earn']['round_trips']} round trips")  # fmt: skip
        result["config"] = {
            "members": args.members, "workers": worker_counts, "connections": levels, "seconds_per_level": args.duration,
            "paced_rate": args.rate, "paced_seconds": args.rate_duration, "wrk_threads": 2,
            "db_pool_size_per_worker": args.pool_size or int(os.environ.get("TREUE_DB_POOL_SIZE", "20")),
            "server": ("uvicorn app_factory:app --workers N --no-access-log" if args.stock_uvicorn else
                       "benchmarks/serve.py --workers N (uvicorn, TCP_NODELAY listener, no access log)")
            + "; no background scheduler",
            "request": "POST /api/v1/purchases, 3 lines, unique order id, Idempotency-Key, pos key",
            "active_rules": args.rules,
        }  # fmt: skip
        wrk_runs: list[dict[str, Any]] = []
        paced_runs: list[dict[str, Any]] = []
        healthz_runs: list[dict[str, Any]] = []
        checks: list[dict[str, Any]] = []
        for workers in worker_counts:
            settle_database(url)
            server = Server(url, workers, args.pool_size, workdir / f"server-{workers}w.log", args.stock_uvicorn)
            servers.append(server)
            server.wait_ready()
            log(f"treue up on {server.url} with {workers} worker(s); warming up")
            run_wrk(server, 16, args.warmup, members_file, key, f"w{workers}warm", 2, url)
            floor = run_wrk(server, 16, args.healthz_duration, None, key, f"w{workers}healthz", 2, url)
            healthz_runs.append(floor)
            log(f"  {workers}w GET /healthz c=16 {floor['req_per_s']:8.1f} req/s  p50 {floor['latency_ms']['p50']} ms "
                f"(the HTTP + framework + one SELECT floor)")  # fmt: skip
            for connections in levels:
                tag = f"w{workers}c{connections}"
                run = run_wrk(server, connections, args.duration, members_file, key, tag, 2, url)
                stored = count_orders(url, tag + "-")
                run["purchases_stored"] = stored
                # wrk stops mid-request: up to one request per connection may finish after it stopped counting.
                run["in_flight_at_stop"] = stored - run["ok"]
                run["check"] = "ok" if 0 <= stored - run["ok"] <= connections else "MISMATCH"
                wrk_runs.append(run)
                lat = run["latency_ms"]
                log(f"  {workers}w c={connections:<3} {run['req_per_s']:8.1f} req/s  p50 {lat['p50']:6.2f} ms  "
                    f"p99 {lat['p99']:7.2f} ms  non-2xx {run['non_2xx']}  errors {sum(run['socket_errors'].values())}  "
                    f"treue {run['cpu']['cores_used']['treue']:.2f} / pg {run['cpu']['cores_used']['postgres']:.2f} "
                    f"cores  [{run['check']}]")  # fmt: skip
            tag = f"w{workers}paced"
            paced = run_paced(server, args.rate, args.rate_duration, member_ids, key, tag, url)
            accepted = set(paced.pop("_accepted"))
            with psycopg.connect(url, autocommit=True) as conn:
                stored_ids = {r[0] for r in conn.execute(
                    "SELECT external_order_id FROM purchases WHERE external_order_id LIKE %s", (tag + "-%",))}  # fmt: skip
            paced["purchases_stored"] = len(stored_ids)
            paced["check"] = "ok" if stored_ids == accepted else "MISMATCH"
            paced_runs.append(paced)
            lat = paced["latency_ms"]
            log(f"  {workers}w paced {args.rate:g} req/s: achieved {paced['achieved_req_per_s']} req/s, "
                f"p50 {lat['p50']} ms, p99 {lat['p99']} ms, non-2xx {paced['non_2xx']}, errors {sum(paced['errors'].values())}"
                f"  [{paced['check']}]")  # fmt: skip
            if args.profile and workers == 1:
                if py_spy():
                    log(f"  profiling the worker with py-spy for {args.profile_duration:g} s at c=16")
                    out = RESULTS / f"profile-{stamp}"
                    result["profile"] = run_profile(server, args.profile_duration, 16, members_file, key, out, url)
                else:
                    result["profile"] = {"skipped": "py-spy is not installed (.venv/bin/pip install py-spy)"}
            server.stop()
        result["wrk"] = wrk_runs
        result["healthz"] = healthz_runs
        result["paced"] = paced_runs

        compare_runs: list[dict[str, Any]] = []
        if args.compare_rules and args.rules:
            result["rules_comparison"] = {"skipped": "--rules was given: the base-rule-only half is not possible"}
        elif args.compare_rules:
            log(f"earn with {args.compare_rules} rules vs the base rule only ({args.compare_workers} workers)")
            comparison = compare_rules(args, engine, url, program_id, members_file, key, member_ids[0], workdir,
                                       servers)  # fmt: skip
            result["rules_comparison"] = comparison
            compare_runs = [run for phase in comparison["phases"].values() for run in phase["runs"]]
            for row in comparison["table"]:
                log(f"  c={row['connections']}: relative throughput {row['relative_throughput']}")

        with psycopg.connect(url, autocommit=True) as conn:
            for statement in raw_setup_sql():
                conn.execute(statement)
        settle_database(url)
        best = max(wrk_runs, key=lambda r: r["req_per_s"])
        log(f"pgbench raw earn: -c 1, -c {args.pgbench_clients}" + (
            f", -c {best['connections']}" if best["connections"] not in (1, args.pgbench_clients) else ""))  # fmt: skip
        raw_runs = [
            run_pgbench(url, dbname, 1, 5),
            run_pgbench(url, dbname, args.pgbench_clients, args.pgbench_duration),
        ]
        if best["connections"] not in (1, args.pgbench_clients):
            raw_runs.append(run_pgbench(url, dbname, best["connections"], max(5, args.pgbench_duration // 2)))
        result["pgbench"] = raw_runs
        for run in raw_runs:
            log(f"  pgbench -c {run['clients']:<3} {run['tps']:9.1f} tps  latency avg {run['latency_avg_ms']} ms")

        log("checking the ledger")
        ledger = check_ledger(engine, url, program_id)
        checks = [{"run": r["tag"], "check": r["check"]} for r in wrk_runs + paced_runs + compare_runs]
        counts = ledger["counts"]
        ledger["ok"] = (
            not ledger["violations"] and all(c["check"] == "ok" for c in checks)
            and counts["purchases"] == counts["distinct_orders"] == counts["earn_transfers"]
            == counts["idempotency_records"] and counts["purchases_without_earn"] == 0
            and counts["points_earned"] == counts["member_balances"]
        )  # fmt: skip
        ledger["runs"] = checks
        result["correctness"] = ledger

        reference = next(r for r in raw_runs if r["clients"] == args.pgbench_clients)
        best_paced = min(paced_runs, key=lambda r: r["latency_ms"]["p99"])
        result["summary"] = {
            "best_req_per_s": best["req_per_s"], "best_at": {"workers": best["workers"],
                                                             "connections": best["connections"]},
            "best_latency_ms": {k: best["latency_ms"][k] for k in ("p50", "p90", "p99")},
            "raw_tps": reference["tps"], "raw_clients": reference["clients"],
            "ratio": round(best["req_per_s"] / reference["tps"], 3),
            "ratio_target": TARGET_RATIO, "ratio_met": best["req_per_s"] / reference["tps"] >= TARGET_RATIO,
            "paced_rate": args.rate, "paced_best": {"workers": best_paced["workers"], **best_paced["latency_ms"]},
            "p99_target_ms": TARGET_P99_MS,
            "p99_met": best_paced["latency_ms"]["p99"] <= TARGET_P99_MS and best_paced["non_2xx"] == 0
            and not best_paced["errors"],
            "correct": ledger["ok"],
            "other_cores_max": max(r["cpu"]["cores_used"]["other"] for r in wrk_runs + paced_runs),
        }  # fmt: skip
        if compare_runs:
            comparison = result["rules_comparison"]
            awarded = [r for r in compare_runs if r["rules"]]
            result["summary"]["rules_comparison"] = {
                "rules": args.compare_rules, "workers": args.compare_workers,
                "relative_throughput": {str(row["connections"]): row["relative_throughput"]
                                        for row in comparison["table"]},
                "award_path_exercised": all(r["awarded_by_a_rule"] > 0 for r in awarded)
                and all(r["awarded_by_a_rule"] == 0 for r in compare_runs if not r["rules"]),
            }  # fmt: skip
        result["elapsed_s"] = round(time.monotonic() - started, 1)
        out = RESULTS / f"earn-{stamp}.json"
        text_ = json.dumps(result, indent=2, default=str) + "\n"
        out.write_text(text_)
        (RESULTS / "latest.json").write_text(text_)
        print_summary(result)
        print(f"\nresults: {out.relative_to(ROOT)} (and benchmarks/results/latest.json)")
        exercised = result["summary"].get("rules_comparison", {}).get("award_path_exercised", True)
        if not exercised:
            log("the rules comparison did not exercise the award path (no purchase got a rule's points)")
        return 0 if ledger["ok"] and exercised else 1
    finally:
        for server in servers:
            server.stop()
        engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
        if args.keep:
            log(f"kept database {dbname}: {url}")
        else:
            drop_database(args.pg, dbname)


def print_summary(result: dict[str, Any]) -> None:
    s = result["summary"]
    print("\nTreue earn over HTTP (wrk, closed loop; req/s counts 2xx only)")
    print(f"{'workers':>7} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>8} {'non2xx':>6} "
          f"{'treue cores':>11} {'pg cores':>8} {'other':>6} {'treue ms/req':>12} {'pg ms/req':>9}")  # fmt: skip
    for r in result["wrk"]:
        cpu, lat = r["cpu"], r["latency_ms"]
        per = cpu.get("cpu_ms_per_request", {})
        print(f"{r['workers']:>7} {r['connections']:>5} {r['req_per_s']:>8.1f} {lat['p50']:>7.2f} {lat['p90']:>7.2f} "
              f"{lat['p99']:>8.2f} {r['non_2xx']:>6} {cpu['cores_used']['treue']:>11.2f} "
              f"{cpu['cores_used']['postgres']:>8.2f} {cpu['cores_used']['other']:>6.2f} {per.get('treue', 0):>12.2f} "
              f"{per.get('postgres', 0):>9.2f}")  # fmt: skip
    print("  (cores: CPU used by the Treue server, by PostgreSQL, and by anything else on the machine)")
    for r in result.get("healthz", []):
        print(f"  floor: GET /healthz, {r['workers']} worker(s), c=16: {r['req_per_s']} req/s, "
              f"p50 {r['latency_ms']['p50']} ms")  # fmt: skip
    print(f"\nFixed rate {s['paced_rate']:g} req/s (open loop, latency from the scheduled send time)")
    for r in result["paced"]:
        lat = r["latency_ms"]
        print(f"  {r['workers']} worker(s): achieved {r['achieved_req_per_s']} req/s, p50 {lat['p50']} ms, "
              f"p90 {lat['p90']} ms, p99 {lat['p99']} ms, max {lat['max']} ms, non-2xx {r['non_2xx']}, "
              f"errors {sum(r['errors'].values())}")  # fmt: skip
    print("\nRaw earn (pgbench benchmarks/raw_earn.sql, same server)")
    for r in result["pgbench"]:
        print(f"  -c {r['clients']:<3} {r['tps']:9.1f} tps  latency avg {r['latency_avg_ms']} ms  "
              f"WAL {r['wal_bytes_per_request']} B/txn")  # fmt: skip
    st = result["statements_per_earn"]
    wal = [r["wal_bytes_per_request"] for r in result["wrk"]]
    print(f"\nOne earn request: {st['statements']} SQL statements, {st['round_trips']} round trips, "
          f"WAL {min(wal)}-{max(wal)} B/request")  # fmt: skip
    comparison = result.get("rules_comparison", {})
    if "table" in comparison:
        n = comparison["config"]["rules"]
        print(f"\nEarn with {n} rules vs the base rule only ({comparison['config']['workers']} workers, wrk, "
              f"{comparison['config']['seconds_per_level']:g} s per level)")  # fmt: skip
        print(f"{'conns':>5} {'base req/s':>10} {'p50':>6} {'p99':>7} {f'{n} rules req/s':>14} {'p50':>6} {'p99':>7} "
              f"{'relative':>8}")  # fmt: skip
        for row in comparison["table"]:
            b, r = row["base_rule_only"], row[f"{n}_rules"]
            print(f"{row['connections']:>5} {b['req_per_s']:>10.1f} {b['p50_ms']:>6.2f} {b['p99_ms']:>7.2f} "
                  f"{r['req_per_s']:>14.1f} {r['p50_ms']:>6.2f} {r['p99_ms']:>7.2f} {row['relative_throughput']:>8.3f}")  # fmt: skip
    print("\nSummary")
    print(f"  Treue earn        {s['best_req_per_s']:.1f} req/s (workers {s['best_at']['workers']}, "
          f"{s['best_at']['connections']} connections), p50 {s['best_latency_ms']['p50']} ms, "
          f"p99 {s['best_latency_ms']['p99']} ms")  # fmt: skip
    print(f"  raw earn          {s['raw_tps']:.1f} tps (pgbench -c {s['raw_clients']})")
    print(f"  ratio             {s['ratio']:.3f}  (target >= {s['ratio_target']}: "
          f"{'met' if s['ratio_met'] else 'NOT met'})")  # fmt: skip
    print(f"  p99 @ {s['paced_rate']:g} req/s   {s['paced_best']['p99']} ms with {s['paced_best']['workers']} worker(s)  "
          f"(target <= {s['p99_target_ms']:g} ms: {'met' if s['p99_met'] else 'NOT met'})")  # fmt: skip
    if s["other_cores_max"] > 0.2 or result["background_cores_before"] > 0.2:
        print(f"  WARNING           other jobs used up to {s['other_cores_max']} cores during the runs "
              f"({result['background_cores_before']} before): the figures are lower than on a quiet machine")  # fmt: skip
    if "rules_comparison" in s:
        rc = s["rules_comparison"]
        rel = ", ".join(f"c={k}: {v}" for k, v in rc["relative_throughput"].items())
        print(f"  {rc['rules']} rules         relative throughput {rel} ({rc['workers']} workers; award path "
              f"{'exercised' if rc['award_path_exercised'] else 'NOT exercised'})")  # fmt: skip
    c = result["correctness"]
    print(f"  correctness       {'ok' if c['ok'] else 'FAILED'}: {c['counts']['purchases']} purchases, "
          f"{len(c['violations'])} invariant violations")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
