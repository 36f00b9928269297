"""simnet: the simulated internet on loopback (authoritative DNS, web farm, CONAC services, samples).

``simnet.run(sample="catalogue")`` is a context manager that starts it in a background thread and
stops it (closing every socket) on exit; see :mod:`simnet.runtime` and ``docs/simnet.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simnet.runtime import SimNet


@contextmanager
def run(
    sample: str = "catalogue",
    spec: str | Path | None = None,
    workdir: str | Path | None = None,
    **options: Any,
) -> Iterator[SimNet]:
    """Start simnet with ``sample`` (or a spec file); stop it on exit."""
    from simnet.runtime import run as _run

    with _run(sample, spec=spec, workdir=workdir, **options) as net:
        yield net
