"""Running simnet: nameserver + web farm for one sample, in a background thread or in the foreground.

``with run("catalogue") as net:`` starts everything on loopback and stops it (closing every socket)
on exit. :class:`SimNet` reports the nameserver address, the ports, the CA file, the sample's files and
the ``BADGEWATCH_*`` settings that point badgewatch at it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any

from simnet.build import LEGACY_TLS_ADDR, SM2_ADDR, gzip_bomb
from simnet.conac import ConacLog
from simnet.dns_server import serve_dns
from simnet.model import (
    LISTENER_MODES,
    AddressPolicy,
    Route,
    StaticUniverse,
    TlsMode,
    Universe,
    policies_of,
)
from simnet.samples import Sample, load
from simnet.tls import AIA_HOST, AIA_PATH, CertAuthority, TlcpServer
from simnet.web import KEEPALIVE_S, Farm

log = logging.getLogger(__name__)

DNS_HOST = "127.0.0.1"


class SimNet:
    """One running simulated internet."""

    def __init__(
        self,
        sample: str = "catalogue",
        spec: str | Path | None = None,
        workdir: str | Path | None = None,
        privileged: bool = False,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.sample_name = sample
        self.spec_path = Path(spec) if spec else None
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="simnet-"))
        self.privileged = privileged
        self.options = dict(options or {})
        # A farm option, not a sample option: seconds an idle keep-alive connection stays open.
        self.keepalive_s = float(self.options.pop("keepalive_s", KEEPALIVE_S))
        # Farm options too: address policies over the sample's own (address -> AddressPolicy or a dict
        # of its fields), measuring every address (peaks per client) and a stats file for other
        # processes (written every stats_interval_s seconds and at the end; 0: never).
        self.extra_policies = {
            a: AddressPolicy.coerce(p) for a, p in dict(self.options.pop("policies", None) or {}).items()
        }
        self.cc_track = bool(self.options.pop("cc_track", False))
        self.stats_interval_s = float(self.options.pop("stats_interval_s", 0))
        self.sample: Sample | None = None
        self.dns_port = 0
        self.http_port = 0
        self.https_port = 0
        self.addresses: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._farm: Farm | None = None
        self._dns_closers: list[Any] = []

    # --- what clients need ------------------------------------------------------------------------

    @property
    def nameserver(self) -> str:
        return f"{DNS_HOST}:{self.dns_port}"

    @property
    def ca_file(self) -> str:
        return str(self.workdir / "tls" / "ca.pem")

    @property
    def registry_path(self) -> str:
        assert self.sample is not None
        return str(self.sample.registry_path)

    @property
    def offices_path(self) -> str:
        assert self.sample is not None
        return str(self.sample.offices_path)

    @property
    def truth_path(self) -> str:
        assert self.sample is not None
        return str(self.sample.truth_path)

    @property
    def xlsx_path(self) -> str | None:
        assert self.sample is not None
        return str(self.sample.xlsx_path) if self.sample.xlsx_path else None

    @property
    def universe(self) -> Universe:
        assert self.sample is not None
        return self.sample.universe

    @cached_property
    def ground_truth(self) -> dict[str, Any]:
        with open(self.truth_path, encoding="utf-8") as f:
            data: dict[str, Any] = json.load(f)
        return data

    @property
    def red_page_hosts(self) -> list[str]:
        assert self.sample is not None
        return list(self.sample.red_page_hosts)

    @property
    def requests_served(self) -> int:
        return self._farm.requests if self._farm else 0

    @property
    def stats_path(self) -> str:
        """Where the stats file is written (``stats_interval_s`` > 0): :meth:`cc_report` as JSON."""
        return str(self.workdir / "simnet-stats.json")

    @property
    def policies(self) -> dict[str, AddressPolicy]:
        """The address policies in force: the sample's, overridden by the ``policies`` option."""
        out = policies_of(self.sample.universe) if self.sample is not None else {}
        out.update(self.extra_policies)
        return out

    def cc_report(self) -> dict[str, Any]:
        """Per-address counts of the web farm as plain data::

            {"addresses": {"127.66.0.1": {"requests", "served", "banned", "bans", "peak_per_min",
                                          "policy": {…} | None, "clients": {"127.0.0.1": {…}}}},
             "totals": {"requests", "served", "banned", "bans"},
             "busiest": {"address", "requests"} | None, "peak_per_min": N}

        ``peak_per_min`` (most requests of one client in any 60 s) is measured on addresses with a
        policy (every address with the ``cc_track`` option). Safe to call from any thread, also
        after :meth:`stop` (the last counts)."""
        farm, loop = self._farm, self._loop
        if farm is None:
            return Farm(StaticUniverse(), gzip_bomb).report()
        thread = self._thread
        if loop is not None and thread is not None and thread.is_alive() and not loop.is_closed():

            async def read() -> dict[str, Any]:
                return farm.report()

            try:
                return asyncio.run_coroutine_threadsafe(read(), loop).result(30)
            except RuntimeError:  # the loop stopped meanwhile
                pass
        return farm.report()

    def stats(self) -> dict[str, Any]:
        """Same as :meth:`cc_report`."""
        return self.cc_report()

    @property
    def conac(self) -> ConacLog:
        """Requests to CONAC's hosts so far (per host), conditional ones, 304s."""
        assert self._farm is not None, "simnet is not running"
        return self._farm.conac

    def env(self) -> dict[str, str]:
        """``BADGEWATCH_*`` variables that point badgewatch at this simnet."""
        return {
            "BADGEWATCH_NAMESERVERS": self.nameserver,
            "BADGEWATCH_HTTP_PORT": str(self.http_port),
            "BADGEWATCH_HTTPS_PORT": str(self.https_port),
            "BADGEWATCH_CA_FILE": self.ca_file,
            "BADGEWATCH_ALLOW_PRIVATE": "true",
            "BADGEWATCH_RED_PAGE_HOSTS": ",".join(self.red_page_hosts),
        }

    def describe(self) -> dict[str, Any]:
        return {
            "nameserver": self.nameserver,
            "http_port": self.http_port,
            "https_port": self.https_port,
            "ca_file": self.ca_file,
            "registry": self.registry_path,
            "offices": self.offices_path,
            "registry_xlsx": self.xlsx_path,
            "ground_truth": self.truth_path,
            "addresses": len(self.addresses),
            "sites": self.sample.sites if self.sample else 0,
            "policies": len(self.policies),
            "stats_file": self.stats_path if self.stats_interval_s > 0 else None,
            "env": self.env(),
        }

    # --- life cycle ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Build the sample (and the spec's sites) into the work directory."""
        if self.sample is not None:
            return
        if self.spec_path is not None:
            from simnet.spec import load_spec

            self.sample = load_spec(self.spec_path, self.workdir)
        else:
            self.sample = load(self.sample_name, self.workdir, **self.options)

    async def serve(self, stop: asyncio.Event) -> None:
        """Listen until ``stop`` is set; always closes every socket."""
        self.prepare()
        assert self.sample is not None
        universe = self.sample.universe
        ca = CertAuthority(self.workdir / "tls")

        def tls_mode(host: str) -> TlsMode | None:
            site = universe.host(host)
            return site.tls if site is not None else None

        farm = Farm(
            universe, gzip_bomb, keepalive_s=self.keepalive_s, policies=self.policies, track=self.cc_track
        )
        self._farm = farm
        writer: asyncio.Task[None] | None = None
        try:
            dns_port = 53 if self.privileged else 0
            try:
                udp, tcp, self.dns_port = await serve_dns(universe, DNS_HOST, dns_port)
            except OSError:
                udp, tcp, self.dns_port = await serve_dns(universe, DNS_HOST, 0)
            self._dns_closers = [udp, tcp]
            self.addresses = universe.addresses()
            publish_intermediate(universe, ca)
            self.http_port = await farm.listen(self.addresses, 80 if self.privileged else 0, None)
            own: dict[str, ssl.SSLContext | Callable[[], asyncio.Protocol]] = {}
            listeners = tls_listeners(universe, self.addresses)
            if TlsMode.LEGACY in listeners.values():
                legacy = ca.server_context(tls_mode, legacy=True)
                own.update((a, legacy) for a, m in listeners.items() if m == TlsMode.LEGACY)
            own.update(
                (a, lambda: TlcpServer(farm.connections))
                for a, m in listeners.items()
                if m == TlsMode.SM2_ONLY
            )
            self.https_port = await farm.listen(
                self.addresses, 443 if self.privileged else 0, ca.server_context(tls_mode), own=own
            )
            if self.stats_interval_s > 0:
                writer = asyncio.ensure_future(self._write_stats(farm))
            self._ready.set()
            await stop.wait()
        finally:
            if writer is not None:
                writer.cancel()
            for closer in self._dns_closers:
                closer.close()
            await farm.close()
            if self.stats_interval_s > 0:
                self._dump_stats(farm)

    async def _write_stats(self, farm: Farm) -> None:
        while True:
            self._dump_stats(farm)
            await asyncio.sleep(self.stats_interval_s)

    def _dump_stats(self, farm: Farm) -> None:
        path = Path(self.stats_path)
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(farm.report()), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot write %s: %s", path, exc)

    def start(self, timeout: float = 120.0) -> SimNet:
        """Run in a background thread; returns once everything listens."""
        self.prepare()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop = asyncio.Event()
            try:
                loop.run_until_complete(self.serve(self._stop))
            except BaseException as exc:  # reported to the starting thread
                self._error = exc
                self._ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=main, name="simnet", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("simnet did not start in time")
        if self._error is not None:
            raise RuntimeError(f"simnet failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        """Close every socket and wait for the thread; remove the work directory if it is ours."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is not None and loop is not None and stop is not None and thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
            thread.join(30)
        self._thread = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SimNet:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def tls_listeners(universe: Universe, addresses: list[str]) -> dict[str, TlsMode]:
    """Addresses whose HTTPS port is served by a listener of its own shape (TLS 1.0 only, TLCP only).

    The samples put such sites on :data:`LEGACY_TLS_ADDR` / :data:`SM2_ADDR`; a spec file may put
    them anywhere, and then every host of that address is served that way."""
    found: dict[str, TlsMode] = {LEGACY_TLS_ADDR: TlsMode.LEGACY, SM2_ADDR: TlsMode.SM2_ONLY}
    if isinstance(universe, StaticUniverse):
        for site in universe.hosts.values():
            if site.tls in LISTENER_MODES:
                found[site.address] = site.tls
    present = set(addresses)
    return {a: m for a, m in found.items() if a in present}


def publish_intermediate(universe: Universe, ca: CertAuthority) -> None:
    """Serve this run's intermediate certificate where leaves' AIA points (it exists only now)."""
    site = universe.host(AIA_HOST)
    if site is not None:
        site.routes[AIA_PATH] = Route(body=ca.intermediate_der, content_type="application/pkix-cert")


@contextmanager
def run(
    sample: str = "catalogue",
    spec: str | Path | None = None,
    workdir: str | Path | None = None,
    **options: Any,
) -> Iterator[SimNet]:
    """Start simnet with ``sample`` (or a spec file) in a background thread; stop it on exit."""
    net = SimNet(sample, spec=spec, workdir=workdir, options=options)
    net.start()
    try:
        yield net
    finally:
        net.stop()
