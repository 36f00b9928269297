"""Writers for what a sample produces: the registry (CSV, optional XLSX), the offices CSV, the ground truth.

All of them stream: a generated registry of a million sites is written in constant memory.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from simnet.build import OFFICE_HEADERS, REGISTRY_HEADERS, Built

XLSX_MAX_ROWS = 100_000


class RegistryWriter:
    """Registry CSV (UTF-8 with BOM, Chinese headers), one row per website."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: TextIO = path.open("w", encoding="utf-8-sig", newline="")
        self._w = csv.DictWriter(self._f, fieldnames=list(REGISTRY_HEADERS))
        self._w.writeheader()
        self.rows = 0

    def write(self, rows: Iterable[dict[str, str]]) -> None:
        for row in rows:
            self._w.writerow(row)
            self.rows += 1

    def close(self) -> None:
        self._f.close()


def write_offices(path: Path, offices: Iterable[dict[str, str]]) -> None:
    """The offices CSV (编办代码, 编办名称, 上级编办代码, 机构数, 联系邮箱, 联系手机)."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(OFFICE_HEADERS))
        w.writeheader()
        for o in offices:
            w.writerow(o)


def write_xlsx(path: Path, registry_csv: Path, offices_csv: Path) -> bool:
    """The same registry as one XLSX (sheet 机构 and sheet 编办); skipped (False) for huge registries."""
    from openpyxl import Workbook

    with registry_csv.open(encoding="utf-8-sig", newline="") as f:
        count = sum(1 for _ in f)
    if count > XLSX_MAX_ROWS:
        return False
    wb = Workbook(write_only=True)
    for title, src in (("机构", registry_csv), ("编办", offices_csv)):
        ws = wb.create_sheet(title)
        with src.open(encoding="utf-8-sig", newline="") as f:
            for row in csv.reader(f):
                ws.append(row)
    wb.save(path)
    return True


class TruthWriter:
    """Streams the ground-truth JSON: ``{"meta": …, "sites": […], "domains": […], "units": […]}``."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = path
        self.meta = meta
        self._tmp = Path(tempfile.mkdtemp(prefix="simnet-truth-"))
        self._parts = {
            k: (self._tmp / f"{k}.jsonl").open("w", encoding="utf-8") for k in ("sites", "domains", "units")
        }
        self.counts = dict.fromkeys(self._parts, 0)

    def add(self, built: Built) -> None:
        for key, items in (("sites", built.sites), ("domains", built.domains), ("units", built.units)):
            f = self._parts[key]
            for item in items:
                f.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
                f.write("\n")
                self.counts[key] += 1

    def close(self) -> None:
        for f in self._parts.values():
            f.close()
        meta = dict(self.meta, counts=self.counts)
        with self.path.open("w", encoding="utf-8") as out:
            out.write('{"meta":' + json.dumps(meta, ensure_ascii=False))
            for key in ("sites", "domains", "units"):
                out.write(f',\n"{key}":[\n')
                with (self._tmp / f"{key}.jsonl").open(encoding="utf-8") as src:
                    first = True
                    for line in src:
                        if not first:
                            out.write(",\n")
                        out.write(line.rstrip("\n"))
                        first = False
                out.write("\n]")
            out.write("}\n")
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> TruthWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
