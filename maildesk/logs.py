"""One line per event, for admins who tail the log.

    2026-11-24T09:12:03+01:00 INFO escalated IMO-4K7M2Q level=2 reason=24h

`event()` is the only way the daemon logs; it takes facts, never bodies or
secrets. JSON lines for log shippers with `[logging] format = "json"`.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import datetime, timezone

LOGGER = logging.getLogger("maildesk")


def _fact(value) -> str:
    text = str(value).replace("\n", " ").replace("\r", " ")
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text


class TextFormatter(logging.Formatter):
    def __init__(self, tz=None):
        super().__init__()
        self.tz = tz

    def stamp(self, record) -> str:
        return datetime.fromtimestamp(record.created, timezone.utc).astimezone(self.tz).isoformat(timespec="seconds")

    def format(self, record):
        event = getattr(record, "event", None) or record.getMessage()
        ref = getattr(record, "ref", None)
        facts = getattr(record, "facts", {})
        parts = [self.stamp(record), record.levelname, event]
        if ref:
            parts.append(ref)
        parts += [f"{k}={_fact(v)}" for k, v in facts.items() if v is not None]
        line = " ".join(parts)
        if record.exc_info and record.levelno >= logging.ERROR:
            line += " error=" + _fact(f"{record.exc_info[0].__name__}: {record.exc_info[1]}")
        return line


class JsonFormatter(TextFormatter):
    def format(self, record):
        doc = {"time": self.stamp(record), "level": record.levelname,
               "event": getattr(record, "event", None) or record.getMessage()}
        if getattr(record, "ref", None):
            doc["ref"] = record.ref
        doc.update({k: str(v) for k, v in getattr(record, "facts", {}).items() if v is not None})
        if record.exc_info and record.levelno >= logging.ERROR:
            doc["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(doc, ensure_ascii=False)


SECRET_WORDS = ("password", "token", "secret", "authorization")


def event(name: str, ref: str | None = None, severity: int = logging.INFO, exc_info=None, **facts) -> None:
    """`severity` is the log's (logging.WARNING); `level`, like any other fact, is the complaint's."""
    # a last guard: a fact named like a secret is never written, whatever a caller passes
    facts = {k: ("[redacted]" if any(w in k.lower() for w in SECRET_WORDS) and v is not None else v)
             for k, v in facts.items()}
    LOGGER.log(severity, name, extra={"event": name, "ref": ref, "facts": facts}, exc_info=exc_info)


def configure(cfg=None, stream=None, level: str | None = None) -> None:
    """Stderr always; a size-rotated file when `[logging] file` is set."""
    tz = cfg.tz if cfg else None
    fmt_cls = JsonFormatter if cfg and cfg.logging.format == "json" else TextFormatter
    for handler in list(LOGGER.handlers):
        LOGGER.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)]
    unwritable = None
    if cfg and cfg.logging.file:
        path = cfg.resolve(cfg.logging.file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(logging.handlers.RotatingFileHandler(
                path, maxBytes=cfg.logging.max_bytes, backupCount=cfg.logging.backup_count, encoding="utf-8"))
        except OSError as e:  # the service's log, read by another user (`status` from monitoring)
            unwritable = (path, e.strerror)
    for handler in handlers:
        handler.setFormatter(fmt_cls(tz))
        LOGGER.addHandler(handler)
    LOGGER.setLevel((level or (cfg.logging.level if cfg else "INFO")).upper())
    LOGGER.propagate = False
    if unwritable:
        event("log_file_unwritable", severity=logging.WARNING, file=str(unwritable[0]), error=unwritable[1],
              using="stderr only")
