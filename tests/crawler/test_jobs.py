"""A scan's subjects read from the registry: the streamed jobs, their subject strings (what a shared
frontier holds) and jobs rebuilt from those strings are the same thing."""

from __future__ import annotations

import pytest

from crawler.jobs import Scope, count_subjects, iter_jobs, iter_subjects, load_jobs, parse_subject
from storage.db import make_engine
from tests.crawler.scanning import Workspace


def test_subjects_rebuild_the_same_jobs(catalogue_ws: Workspace) -> None:
    engine = make_engine(catalogue_ws.db_url)
    try:
        jobs = list(iter_jobs(engine, Scope(), scan_id=0))
        subjects = list(iter_subjects(engine, Scope(), scan_id=0))
        assert subjects == [j.subject for j in jobs]
        kinds = {s.split(":")[0] for s in subjects}
        assert kinds == {"site", "domain", "unit"}, kinds
        assert load_jobs(engine, subjects) == jobs
        # A subject whose row is gone is left out, the others keep their order.
        assert load_jobs(engine, [subjects[1], "site:999999", subjects[0]]) == [jobs[1], jobs[0]]
        # Limited scopes agree too.
        limited = Scope(limit=3)
        assert list(iter_subjects(engine, limited, 0)) == [j.subject for j in iter_jobs(engine, limited, 0)]
        counts = count_subjects(engine, Scope())
        assert counts.total == len(subjects)
        assert counts.units == sum(1 for s in subjects if s.startswith("unit:"))
        assert count_subjects(engine, limited).total == len(list(iter_subjects(engine, limited, 0)))
    finally:
        engine.dispose()


@pytest.mark.parametrize("bad", ["", "site:", "site:x", "unit-3", "unit:", "page:3", "site:-1"])
def test_parse_subject_refuses_garbage(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_subject(bad)
