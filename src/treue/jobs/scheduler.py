"""The in-process scheduler of `treue serve`: runs the jobs every interval in a background thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from treue.jobs.registry import JOBS
from treue.metrics import timed_job
from treue.services.ports import UnitOfWorkFactory

log = logging.getLogger("treue.jobs")
# Every job is idempotent per period, so running each every interval is safe. `clv` refits a model over the
# whole history: run it nightly with `treue jobs run clv` (cron), not every minute. `kpi_rollup` reads the whole
# history once, then only what was recorded since its last run.
DEFAULT_JOBS = ("expire", "rules", "tiers", "club", "referrals", "notifications", "outbox", "fraud_scan",
                "kpi_rollup")  # fmt: skip


class Scheduler:
    def __init__(self, uow: UnitOfWorkFactory, clock: Callable[[], datetime], interval: float = 60.0,
                 jobs: tuple[str, ...] = DEFAULT_JOBS) -> None:  # fmt: skip
        self.uow, self.clock, self.interval, self.jobs = uow, clock, interval, jobs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="treue-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def run_once(self) -> dict[str, dict[str, object]]:
        results: dict[str, dict[str, object]] = {}
        for name in self.jobs:
            try:
                with timed_job(name):
                    results[name] = JOBS[name](self.uow, self.clock(), None)
            except Exception:  # a failing job is logged and retried next round; the server keeps serving
                log.exception("job %s failed", name)
        return results

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval)
