"""`treue worker`: outbound delivery (webhooks, the event stream) and high-volume purchase intake.

`treue worker run` is the long-running process: it relays the outbox (webhook deliveries, NATS when
TREUE_NATS_URL is set, queued notifications) and sends due webhook attempts and notifications (email over SMTP,
push as the event notification.push). Run as many as you like: each delivery attempt is claimed
by one worker under a lease. With `--jobs` it also runs the periodic jobs (the scheduler `treue serve` runs
unless `--no-scheduler`). `treue worker webhooks ...` manages a programme's endpoints and delivery log.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from treue.cli.common import emit, fail, friendly, now, program_uuid, uow, uuid_arg
from treue.domain.webhooks import DeliveryPolicy
from treue.jobs.scheduler import Scheduler
from treue.services import notifications as notices
from treue.services import streams
from treue.services import webhooks as cases
from treue.services.mail import mailer_from_env

worker = typer.Typer(help="Outbound delivery: webhooks and event streams.", no_args_is_help=True)
webhooks = typer.Typer(help="A programme's webhook endpoints and their delivery log.", no_args_is_help=True)
worker.add_typer(webhooks, name="webhooks")

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


def policy_from_env(lease_seconds: float | None = None) -> DeliveryPolicy:
    """TREUE_WEBHOOK_RETRY_SCHEDULE (e.g. `5s,5m,30m,2h,5h,10h,10h`), TREUE_WEBHOOK_DISABLE_AFTER (e.g. `5d`),
    TREUE_WEBHOOK_DISABLE_MIN_FAILURES (e.g. 10), TREUE_WEBHOOK_LEASE_SECONDS."""
    minimum = os.environ.get("TREUE_WEBHOOK_DISABLE_MIN_FAILURES")
    policy = DeliveryPolicy.parse(os.environ.get("TREUE_WEBHOOK_RETRY_SCHEDULE"),
                                  os.environ.get("TREUE_WEBHOOK_DISABLE_AFTER"),
                                  int(minimum) if minimum else None)  # fmt: skip
    lease = lease_seconds or float(os.environ.get("TREUE_WEBHOOK_LEASE_SECONDS") or 0)
    if lease:
        policy = DeliveryPolicy(policy.schedule, policy.disable_after, policy.disable_min_failures,
                                timedelta(seconds=lease), min(policy.timeout_seconds, lease / 2))  # fmt: skip
    return policy


@worker.command("run")
@friendly
def run(once: bool = typer.Option(False, "--once", help="one round, then exit"),
        poll: float = typer.Option(1.0, "--poll", help="seconds to wait when there is nothing to do"),
        name: str = typer.Option("", "--name", help="this worker's name in the delivery log (default host:pid)"),
        batch: int = typer.Option(20, "--batch", help="deliveries claimed per round"),
        lease: float = typer.Option(0, "--lease", help="seconds a claimed delivery stays this worker's"),
        jobs: bool = typer.Option(False, "--jobs", help="also run the periodic jobs (expiry, rules, tiers, ...)"),
        interval: float = typer.Option(60.0, "--interval", help="seconds between rounds of the periodic jobs")) -> None:  # fmt: skip
    """Relay the outbox and deliver webhooks until stopped (SIGTERM/SIGINT finish the round, then exit); with
    --jobs also the periodic jobs, in a thread (idempotent per period: a second copy elsewhere does no harm)."""
    policy = policy_from_env(lease or None)
    me = name or f"{socket.gethostname()}:{os.getpid()}"
    publisher = streams.publisher_from_env()
    mailer = mailer_from_env()  # notifications (issue 8): TREUE_SMTP_URL or TREUE_SMTP_HOST/PORT
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    scheduler = Scheduler(uow(), now, interval) if jobs else None
    if scheduler is not None and not once:
        scheduler.start()
    typer.echo(f"worker {me} started" + (" with the periodic jobs" if jobs else ""), err=True)
    while not stopping:
        relayed = cases.relay_outbox(uow(), now(), publisher=publisher)
        sent = cases.deliver_due(uow(), now, me, policy, limit=batch)
        mailed = notices.send_due(uow(), now, me, mailer, limit=batch)
        if once:
            ran = scheduler.run_once() if scheduler is not None else None  # in this thread: done before the exit
            emit({"relay": relayed, "deliveries": sent, "notifications": mailed} | ({"jobs": ran} if jobs else {}))
            break
        if not relayed["relayed"] and not sent["attempted"] and not mailed["attempted"]:
            time.sleep(poll)
    if scheduler is not None and not once:
        scheduler.stop()
    if publisher is not None:
        publisher.close()


@worker.command("intake")
@friendly
def intake(stream: str = typer.Option("TREUE_INTAKE", "--stream", help="JetStream stream (created if missing)"),
           subject: str = typer.Option("treue.intake.purchases", "--subject", help="subject of purchase messages"),
           durable: str = typer.Option("treue-intake", "--durable", help="durable consumer name"),
           ack_wait: float = typer.Option(30.0, "--ack-wait", help="seconds before an unacked message returns"),
           url: str = typer.Option("", "--nats-url", help="default: TREUE_NATS_URL"),
           once: bool = typer.Option(False, "--once", help="stop when the stream has nothing more")) -> None:  # fmt: skip
    """Record purchases from a JetStream stream: acked after commit, duplicates (partner, order id) count as done."""
    server = url or os.environ.get(streams.NATS_URL_ENV, "")
    if not server:
        fail("invalid_input: give --nats-url or set TREUE_NATS_URL")
    stopper: dict[str, asyncio.Event] = {}

    async def main() -> streams.IntakeReport:
        stopper["event"] = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopper["event"].set)
        return await streams.run_intake(uow(), now, server, stream, subject, durable, ack_wait=ack_wait,
                                        stop_when_idle=once, stop=stopper["event"])  # fmt: skip

    emit(asyncio.run(main()).as_dict())


# -- endpoints ------------------------------------------------------------------------------------------------
def _print_endpoint(view: dict[str, Any]) -> str:
    state = "enabled" if view["enabled"] else f"DISABLED ({view['disabled_reason']})"
    return f"{view['id']}  {state}  {view['url']}  {','.join(view['events'])}"


@webhooks.command("add")
@friendly
def add(program: Program, url: str = typer.Option(..., "--url"),
        event: list[str] = typer.Option(..., "--event", help="event type, prefix (points.*) or *; repeatable"),
        description: str | None = typer.Option(None, "--description")) -> None:  # fmt: skip
    """Register an endpoint; prints it with its signing secret (whsec_...)."""
    emit(cases.create_endpoint(uow()(), program_uuid(program), {"url": url, "events": event,
                                                               "description": description}, now(), actor="cli"))  # fmt: skip


@webhooks.command("list")
@friendly
def list_(program: Program, as_json: Json = False) -> None:
    """The programme's endpoints (without secrets)."""
    found = cases.list_endpoints(uow()(), program_uuid(program))
    emit(found, as_json, "\n".join(_print_endpoint(v) for v in found) or "no webhook endpoints")


@webhooks.command("show")
@friendly
def show(webhook_id: str, program: Program) -> None:
    """One endpoint with its secret and delivery counts."""
    emit(cases.get_endpoint(uow()(), program_uuid(program), uuid_arg(webhook_id, "webhook")))


@webhooks.command("update")
@friendly
def update_(webhook_id: str, program: Program, url: str | None = typer.Option(None, "--url"),
            event: list[str] | None = typer.Option(None, "--event", help="replaces the filters; repeatable"),
            enable: bool | None = typer.Option(None, "--enable/--disable"),
            rotate_secret: bool = typer.Option(False, "--rotate-secret")) -> None:  # fmt: skip
    """Change an endpoint; --enable after a fix clears its failure count."""
    changes = {"url": url, "events": event or None, "enabled": enable, "rotate_secret": rotate_secret}
    emit(cases.update_endpoint(uow()(), program_uuid(program), uuid_arg(webhook_id, "webhook"), changes, now(),
                               actor="cli"))  # fmt: skip


@webhooks.command("deliveries")
@friendly
def deliveries(webhook_id: str, program: Program, status: str | None = typer.Option(None, "--status"),
               limit: int = typer.Option(50, "--limit"), as_json: Json = False) -> None:  # fmt: skip
    """The delivery log, newest first: each delivery with its attempts (status code, error, duration)."""
    found = cases.list_deliveries(uow()(), program_uuid(program), uuid_arg(webhook_id, "webhook"), status, limit)
    lines = []
    for d in found:
        lines.append(f"{d['id']}  {d['event_type']}  {d['status']}  attempts {d['attempts']}  "
                     f"last {d['last_status_code'] or '-'} {d['last_error'] or ''}".rstrip())  # fmt: skip
    emit(found, as_json, "\n".join(lines) or "no deliveries")


@webhooks.command("redeliver")
@friendly
def redeliver(webhook_id: str, program: Program, delivery: str | None = typer.Option(None, "--delivery"),
              failed_since: datetime | None = typer.Option(None, "--failed-since",
                                                           help="every failed delivery created since (ISO, UTC)")) -> None:  # fmt: skip
    """Send a delivery again (--delivery ID), or every failed one since a time."""
    if failed_since is not None and failed_since.tzinfo is None:
        failed_since = failed_since.replace(tzinfo=UTC)
    emit(cases.redeliver(uow()(), program_uuid(program), uuid_arg(webhook_id, "webhook"), now(),
                         delivery_id=uuid_arg(delivery, "delivery") if delivery else None, failed_since=failed_since,
                         actor="cli"))  # fmt: skip
