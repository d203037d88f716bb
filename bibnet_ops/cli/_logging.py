"""Logging to stderr the way a service manager reads it: journald prefixes, plain text, or JSON lines.

- `journal`: `<N>message` with the syslog priority N (sd-daemon(3) prefixes) and no timestamp: journald
  stamps, prioritises and colours each line itself (`journalctl -p warning` works).
- `text`: `2026-12-05 08:00:00 WARNING bibnet_ops.collector: message` for a terminal or a file.
- `json`: one object per line (`time`, `level`, `logger`, `message`, and `exc` with a traceback) for a
  log shipper.
- `auto` (default): `journal` when stderr is the journal stream systemd gave us (JOURNAL_STREAM names
  its device and inode), else `text`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import TextIO

__all__ = ["LOG_FORMATS", "JournalFormatter", "JsonFormatter", "configure_logging", "under_journald"]

LOG_FORMATS = ("auto", "text", "journal", "json")

# syslog priorities for sd-daemon prefixes
_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def under_journald(stream: TextIO | None = None) -> bool:
    """True when `stream` (stderr by default) is connected to the journal (systemd's JOURNAL_STREAM)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not sep:
        return False
    stream = stream or sys.stderr
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return f"{st.st_dev}" == dev and f"{st.st_ino}" == ino


def _priority(levelno: int) -> int:
    for level in sorted(_PRIORITY, reverse=True):
        if levelno >= level:
            return _PRIORITY[level]
    return 7


class JournalFormatter(logging.Formatter):
    """`<3>bibnet_ops.collector: message`; continuation lines of a traceback carry the prefix too."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_priority(record.levelno)}>"
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return "\n".join(prefix + line for line in text.splitlines() or [""])


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and exc when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def configure_logging(fmt: str = "auto", level: str = "INFO", stream: TextIO | None = None) -> str:
    """Send the package's log records to stderr in `fmt`; returns the format chosen (auto resolved).

    Args:
        fmt: one of LOG_FORMATS.
        level: DEBUG, INFO, WARNING or ERROR, for bibnet-ops' own loggers (other libraries: WARNING).
        stream: where to write (stderr by default).
    """
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "journal" if under_journald(stream) else "text"
    handler = logging.StreamHandler(stream)
    if fmt == "journal":
        handler.setFormatter(JournalFormatter())
    elif fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                               "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_bibnet", False):
            root.removeHandler(old)
    handler._bibnet = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    # other libraries (httpx logs every request at INFO) speak at WARNING and above only
    root.setLevel(logging.WARNING)
    logging.getLogger("bibnet_ops").setLevel(getattr(logging, level.upper(), logging.INFO))
    return fmt
