"""Structured logs: one JSON object per line (time, level, logger, pid, message,
and the exception when there is one), for the server, its workers and the
coordinator alike."""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

import orjson


class JsonFormatter(logging.Formatter):
    """Formats a log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        entry: dict[str, Any] = {
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
            "level": record.levelname.lower(),
            "logger": "granian" if record.name == "_granian" else record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def dict_config(level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` (also what granian takes for its workers)."""
    handler = {"formatter": "json", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": JsonFormatter},
            "generic": {"()": JsonFormatter},
            "access": {"()": JsonFormatter},
        },
        "handlers": {"console": handler, "access": handler},
        "root": {"handlers": ["console"], "level": level.upper()},
        "loggers": {
            "_granian": {"handlers": ["console"], "level": level.upper(), "propagate": False},
            "granian.access": {"handlers": ["access"], "level": level.upper(), "propagate": False},
        },
    }


def configure(level: str = "info") -> None:
    """Sends every log record of this process to stderr as JSON lines."""
    logging.config.dictConfig(dict_config(level))
