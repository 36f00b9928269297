"""The download handler's connection pool forgets hosts it holds no connection to (Twisted's own keeps
an empty entry per host forever: memory that grows with the registry)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock

from crawler.download import PrunedPool


class _Transport:
    def __init__(self) -> None:
        self.lost = False

    def loseConnection(self) -> None:
        self.lost = True


class _Connection:
    """A quiescent HTTP/1.1 client connection as the pool sees it (state and transport only)."""

    state = "QUIESCENT"

    def __init__(self) -> None:
        self.transport = _Transport()


class _Endpoint:
    def connect(self, factory: Any) -> defer.Deferred[Any]:
        return defer.succeed(_Connection())


def test_hosts_without_pooled_connections_are_forgotten() -> None:
    clock = Clock()
    pool = PrunedPool(clock, persistent=True)  # type: ignore[no-untyped-call]
    pool.cachedConnectionTimeout = 10
    pool.retryAutomatically = False  # hand back the pooled connection itself, not a retrying wrapper
    hosts = [("http", f"site{i}.example.cn", 80) for i in range(1000)]
    conns = {}
    for key in hosts:
        conns[key] = _Connection()
        pool._putConnection(key, conns[key])  # type: ignore[no-untyped-call]  # a request finished
    assert len(pool._connections) == 1000
    # Half the hosts are asked again before the idle timeout: their connection is reused.
    for key in hosts[:500]:
        got: list[Any] = []
        pool.getConnection(key, _Endpoint()).addCallback(got.append)
        assert got == [conns[key]]
    assert len(pool._connections) == 500  # nothing pooled for those hosts now: forgotten
    # The idle timeout closes the rest and forgets their hosts too.
    clock.advance(11)
    assert pool._connections == {}
    assert all(conns[key].transport.lost for key in hosts[500:])
    assert not any(conns[key].transport.lost for key in hosts[:500])
    # A host asked for with nothing pooled leaves no entry either.
    pool.getConnection(("http", "new.example.cn", 80), _Endpoint())
    assert pool._connections == {}
