"""Logging set-up: plain lines for a terminal, or one JSON object per line (TREUE_LOG_FORMAT=json) for a log
collector, with the time in UTC, level, logger, message and any exception."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}  # fmt: skip
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: int = logging.WARNING) -> None:
    """The root logger's format by TREUE_LOG_FORMAT (`json` or `text`, the default) and level by TREUE_LOG_LEVEL."""
    handler = logging.StreamHandler()
    if os.environ.get("TREUE_LOG_FORMAT", "text").lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("TREUE_LOG_LEVEL", logging.getLevelName(level)).upper())
