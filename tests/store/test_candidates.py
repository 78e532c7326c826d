"""The tables of searches on a supernet (schema version 5): candidates and cached architecture costs."""

from __future__ import annotations

import pytest

import wsnas.store.schema as store_schema
from wsnas.core.errors import WsnasError
from wsnas.store import SCHEMA_VERSION, Store


def cand(arch, position, score=0.5, **extra):
    return {"arch": arch, "generation": position // 2, "position": position, "origin": "random", "score": score,
            **extra}


def test_candidates_round_trip_in_evaluation_order_and_the_front(store):
    store.ensure_run("evolve/r/evolution/0", "evolve", {"x": 1})
    rows = [cand("111", 1, 0.7, params=900, mflops=0.05), cand("222", 0, 0.6, latency_ms=1.5, arch_index=21),
            cand("333", 2, None, origin="mutation", loss=float("nan"))]
    assert store.add_candidates("evolve/r/evolution/0", rows) == 3
    back = store.candidates("evolve/r/evolution/0")
    assert [r["arch"] for r in back] == ["222", "111", "333"] and back[0]["arch_index"] == 21
    assert back[1]["params"] == 900 and back[0]["latency_ms"] == 1.5 and back[2]["loss"] is None
    assert [r["on_front"] for r in back] == [False, False, False] and back[2]["score"] is None
    assert store.set_front("evolve/r/evolution/0", ["111", "222"]) == 2
    assert store.set_front("evolve/r/evolution/0", ["111"]) == 1
    assert [r["on_front"] for r in store.candidates("evolve/r/evolution/0")] == [False, True, False]
    with pytest.raises(WsnasError, match="1 architecture.*of the front are not candidates"):
        store.set_front("evolve/r/evolution/0", ["111", "444"])
    store.add_candidates("evolve/r/evolution/0", [cand("111", 1, 0.8)])  # the same (run, arch): replaced
    assert [r["score"] for r in store.candidates("evolve/r/evolution/0")] == [0.6, 0.8, None]


@pytest.mark.parametrize("row, fragment", [
    (cand("1", 0, 93.0), "score 93.0 must be an accuracy as a fraction"),
    (cand("1", 0, origin="magic"), "candidate origin 'magic' is not one of random, mutation, crossover, exhaustive"),
    ({"arch": "1", "position": 0, "origin": "random"}, "lacks the field 'generation'"),
    ({**cand("1", 0), "position": -1}, "position -1 must be at least 0"),
    (cand("1", 0, colour="red"), "unknown field(s) 'colour'"),
])
def test_bad_candidate_rows_are_refused_whole(store, row, fragment):
    store.ensure_run("s", "evolve", {})
    with pytest.raises(WsnasError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        store.add_candidates("s", [cand("ok", 5), row])
    assert store.candidates("s") == []
    with pytest.raises(WsnasError, match="not in the results store"):
        store.add_candidates("nope", [cand("1", 0)])


def test_arch_costs_are_cached_per_key(store):
    rows = [{"key": "k1", "arch": "111", "metric": m, "value": v, "config": {"space": "tiny64"}}
            for m, v in (("params", 900), ("mflops", 0.05), ("latency_ms", 1.25))]
    assert store.add_arch_costs(rows) == 3
    store.add_arch_costs([{"key": "k2", "arch": "111", "metric": "latency_ms", "value": 2.0, "config_json": "{}"}])
    store.add_arch_costs([{"key": "k1", "arch": "111", "metric": "latency_ms", "value": 1.5, "config": {}}])
    assert store.arch_costs("k1") == {"111": {"params": 900.0, "mflops": 0.05, "latency_ms": 1.5}}
    assert store.arch_costs("k2") == {"111": {"latency_ms": 2.0}} and store.arch_costs("k3") == {}
    for bad, fragment in (({"metric": "speed"}, "cost metric 'speed' is not one of params, mflops, latency_ms"),
                          ({"value": -1}, "must be a finite non-negative number"),
                          ({"value": float("inf")}, "must be a finite non-negative number")):
        with pytest.raises(WsnasError, match=fragment):
            store.add_arch_costs([{**rows[0], **bad}])


def test_a_version_4_store_gains_the_search_tables(tmp_path, monkeypatch):
    path = tmp_path / "v4.db"
    with monkeypatch.context() as m:
        m.setattr(store_schema, "_MIGRATIONS", store_schema._MIGRATIONS[:4])
        m.setattr(store_schema, "SCHEMA_VERSION", 4)
        with Store(path) as s:
            s.ensure_run("old", "supernet", {"x": 1})
            assert "candidates" not in s.tables() and s.schema_version == 4
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION == 6 and s.get_run("old")["kind"] == "supernet"
        assert s.tables()["candidates"] == 0 and s.tables()["arch_costs"] == 0
