"""The scan's frontier: subjects handed out as their server addresses are ready.

A subject started for an address without a free place or rate budget only waits — holding one of the
scan's slots while other addresses idle. With most sites on a few consolidation platforms, a registry
read in order would fill every slot with one platform's sites. The frontier resolves the address of
the next subjects ahead of time (a few hundred lookups in flight, the answers the scan's resolver keeps
for the subjects themselves) and starts a subject only when :meth:`Politeness.admit` says its address
may take one more; the others wait in a queue per address and go as soon as it can, interleaving
addresses over the night.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Protocol
from urllib.parse import urlsplit

from crawler.jobs import DomainJob, Job, SiteJob
from crawler.resolver import is_ip

LOOKAHEAD = 256  # subjects whose address is being looked up ahead of their turn
MAX_DEFERRED = 50_000  # subjects kept waiting for their address before the registry is read further
POLL_S = 0.05


class Admission(Protocol):
    def admit(self, address: str) -> bool: ...
    def started(self, address: str) -> None: ...


def host_of_job(job: Job) -> str:
    """The host a subject's first request goes to ("" when it makes none)."""
    if isinstance(job, SiteJob):
        try:
            return (urlsplit(job.url).hostname or "").lower()
        except ValueError:
            return ""
    if isinstance(job, DomainJob):
        return job.ascii
    return ""


class AddressFrontier:
    """Jobs in the order addresses allow (see the module docstring)."""

    def __init__(
        self,
        jobs: Iterable[Job],
        admission: Admission,
        address_of: Callable[[str], Awaitable[str]],
    ) -> None:
        self.jobs: Iterator[Job] = iter(jobs)
        self.admission = admission
        self.address_of = address_of
        self.deferred: dict[str, collections.deque[Job]] = {}
        self.waiting = 0
        self.deferrals = 0

    async def _address(self, job: Job) -> str:
        host = host_of_job(job)
        if not host:
            return ""
        if is_ip(host):
            return host.strip("[]")
        try:
            return await self.address_of(host)
        except Exception:  # no address (DNS failure, refused): the subject itself records why
            return ""

    def _ready(self) -> tuple[Job, str] | None:
        for address, queue in self.deferred.items():
            if self.admission.admit(address):
                job = queue.popleft()
                if not queue:
                    del self.deferred[address]
                self.waiting -= 1
                return job, address
        return None

    async def __aiter__(self) -> AsyncIterator[tuple[Job, str]]:
        ahead: collections.deque[tuple[Job, asyncio.Future[str]]] = collections.deque()
        exhausted = False
        try:
            while True:
                while not exhausted and len(ahead) < LOOKAHEAD and self.waiting < MAX_DEFERRED:
                    job = next(self.jobs, None)
                    if job is None:
                        exhausted = True
                        break
                    ahead.append((job, asyncio.ensure_future(self._address(job))))
                got = self._ready()
                if got is None and ahead and ahead[0][1].done():
                    job, fut = ahead.popleft()
                    address = fut.result()
                    if address and not self.admission.admit(address):
                        self.deferred.setdefault(address, collections.deque()).append(job)
                        self.waiting += 1
                        self.deferrals += 1
                        continue
                    got = (job, address)
                if got is None:
                    if exhausted and not ahead and not self.deferred:
                        return
                    if ahead and not ahead[0][1].done():
                        await asyncio.wait({ahead[0][1]}, timeout=POLL_S)
                    else:
                        await asyncio.sleep(POLL_S)  # every known address is busy: wait for a place
                    continue
                job, address = got
                if address:
                    self.admission.started(address)
                yield job, address
        finally:
            for _job, fut in ahead:
                fut.cancel()
