"""pytest plugin: simnet fixtures for every test area.

``simnet`` (session): the ``catalogue`` sample running on ephemeral loopback ports.
``simnet_factory`` (session): ``simnet_factory("baoding")`` or ``simnet_factory("generated", sites=500,
delay_ms=50)`` starts another sample once per session (same arguments: same instance) and stops it
at the end of the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from simnet.runtime import SimNet


@pytest.fixture(scope="session")
def simnet() -> Iterator[SimNet]:
    """The catalogue sample: one site per scenario, with its ground truth."""
    net = SimNet("catalogue").start()
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture(scope="session")
def simnet_factory() -> Iterator[Callable[..., SimNet]]:
    """Start a sample by name (``catalogue``, ``baoding``, ``generated``) with options; cached per session."""
    running: dict[tuple[str, str], SimNet] = {}

    def start(sample: str = "catalogue", **options: Any) -> SimNet:
        key = (sample, repr(sorted(options.items())))
        net = running.get(key)
        if net is None:
            net = SimNet(sample, options=options).start()
            running[key] = net
        return net

    try:
        yield start
    finally:
        for net in running.values():
            net.stop()
