"""A scan's log file, and a terminal kept for people.

Scrapy and Twisted log in English (retries, lost connections, deprecation notes): during a scan those
records go to the scan's log file, ``<evidence_dir>/logs/scan-<id>.log``, with everything else that is
logged; the terminal shows them only with ``-v``. The terminal gets the scan's Chinese progress and
summary instead, which says where the log is and how many such records it holds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from storage.config import Config

# Loggers whose records are for developers: the file gets them, the terminal only with -v or errors.
LIBRARY_LOGGERS = ("scrapy", "twisted", "py.warnings", "asyncio", "scrapy_redis", "playwright")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class ScanLog:
    path: Path | None = None  # None: the file could not be opened (the terminal keeps everything)
    library_records: int = 0  # records of LIBRARY_LOGGERS kept off the terminal


class _OffTheTerminal(logging.Filter):
    def __init__(self, log: ScanLog) -> None:
        super().__init__()
        self.log = log
        self._last: logging.LogRecord | None = None  # one record passes every terminal handler

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR or not record.name.startswith(LIBRARY_LOGGERS):
            return True
        if record is not self._last:
            self._last = record
            self.log.library_records += 1
        return False


def log_path(config: Config, scan_id: int, worker: str = "") -> Path:
    """``<evidence_dir>/logs/scan-<id>.log`` (a distributed worker's: ``scan-<id>-<worker>.log``)."""
    name = f"scan-{scan_id}-{worker.replace(':', '-')}" if worker else f"scan-{scan_id}"
    return Path(config.evidence_dir) / "logs" / f"{name}.log"


@contextmanager
def scan_log(config: Config, scan_id: int, worker: str = "") -> Iterator[ScanLog]:
    """While the scan runs: every record to its log file; library records below ERROR off the
    terminal's handlers (unless the command line asked for ``-v``, i.e. the root logs INFO or more)."""
    root = logging.getLogger()
    result = ScanLog()
    path = log_path(config, scan_id, worker)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file: logging.Handler | None = logging.FileHandler(path, encoding="utf-8")
        result.path = path
    except OSError as exc:
        logging.getLogger(__name__).warning("scan log %s cannot be written: %s", path, exc)
        file = None
    terminals = [h for h in root.handlers if not isinstance(h, logging.FileHandler)]
    quiet = root.getEffectiveLevel() > logging.INFO
    off = _OffTheTerminal(result)
    if file is not None:
        file.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(file)
        if quiet:
            for handler in terminals:
                handler.addFilter(off)
    try:
        yield result
    finally:
        if file is not None:
            root.removeHandler(file)
            file.close()
            for handler in terminals:
                handler.removeFilter(off)
