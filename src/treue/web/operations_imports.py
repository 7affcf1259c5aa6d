"""Purchase imports started from the admin: run in the server in the background, one at a time, with progress
the page polls.

The runs live in this process's memory (the last RUNS_KEPT of them): `treue serve` is one process, so the page
that polls finds its run. Behind several API processes a proxy must keep a staff session on one process (or the
import is run with `treue import`, which shows its own progress).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain.errors import DomainError
from treue.ids import new_id
from treue.services.imports import import_purchases
from treue.services.operations import record_import
from treue.services.ports import UnitOfWorkFactory

RUNS_KEPT = 50
MAX_BYTES = 20 * 1024 * 1024  # an upload larger than this is refused before anything is read into the ledger


@dataclass
class ImportRun:
    id: UUID
    program_id: UUID
    filename: str
    actor: str
    total: int
    started_at: datetime
    done: int = 0
    status: str = "queued"  # queued -> running -> finished | failed
    report: dict[str, Any] | None = None
    error: str | None = None
    finished_at: datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def percent(self) -> int:
        return 100 if self.status == "finished" else (self.done * 100 // self.total if self.total else 0)

    def advance(self, rows: int) -> None:
        with self.lock:
            self.done += rows


_runs: OrderedDict[UUID, ImportRun] = OrderedDict()
_runs_lock = threading.Lock()
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="treue-import")


def start(uow_factory: UnitOfWorkFactory, program_id: UUID, lines: list[str], filename: str, actor: str,
          clock: Callable[[], datetime], *, create_members: bool, on_error: str) -> ImportRun:  # fmt: skip
    """Queue an import of `lines` (a CSV with its header) and return its run at once."""
    run = ImportRun(new_id(), program_id, filename, actor, max(len(lines) - 1, 0), clock())
    with _runs_lock:
        _runs[run.id] = run
        while len(_runs) > RUNS_KEPT:
            _runs.popitem(last=False)
    _executor.submit(_run, run, uow_factory, lines, clock, create_members, on_error)
    return run


def _run(run: ImportRun, uow_factory: UnitOfWorkFactory, lines: list[str], clock: Callable[[], datetime],
         create_members: bool, on_error: str) -> None:  # fmt: skip
    run.status = "running"
    try:
        report = import_purchases(uow_factory, run.program_id, lines, clock, create_members=create_members,
                                  on_error=on_error, progress=run.advance).as_dict()  # fmt: skip
        record_import(uow_factory(), run.program_id, run.actor, run.filename, report, clock())
    except DomainError as error:
        run.error = f"{error.code}: {error.detail}"
        run.status = "failed"
    except Exception as error:  # a background thread has nobody to raise to: show it on the page
        run.error = f"{type(error).__name__}: {error}"
        run.status = "failed"
    else:
        run.report = report
        run.status = "finished"
    run.finished_at = clock()


def find(program_id: UUID, run_id: UUID) -> ImportRun | None:
    """A run of this programme (another programme's run is as unknown as none)."""
    with _runs_lock:
        run = _runs.get(run_id)
    return run if run is not None and run.program_id == program_id else None


def recent(program_id: UUID) -> list[ImportRun]:
    with _runs_lock:
        return [run for run in reversed(_runs.values()) if run.program_id == program_id]
