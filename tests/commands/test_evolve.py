"""`wsnas evolve` on trained supernets of every space: constraints, storage, fronts, export round
trip, resumption after an interruption, validation against a ground truth, and bad input."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter

import numpy as np
import pytest

import wsnas.selection.evolve as evolve_module
from wsnas.analysis.evolve import found_ranks
from wsnas.cli import main
from wsnas.groundtruth.truth import load_truth
from wsnas.selection.evolution import pareto_front
from wsnas.spaces import get_space
from wsnas.spaces.cost import cost_of
from wsnas.store import Store

RUNTIME = ["--no-progress", "--threads", "1"]
SPACES = {
    "tiny": ["--space", "tiny64", "--space-option", "channels=4", "--space-option", "stem_channels=8",
             "--space-option", "cells=1"],
    "nb": ["--space", "nb201", "--space-option", "channels=4", "--space-option", "cells_per_stage=1"],
    "darts": ["--space", "darts", "--space-option", "search_channels=2", "--space-option", "search_layers=3",
              "--space-option", "channels=4", "--space-option", "layers=3", "--space-option", "auxiliary=false"],
}
SMALL = ["--population", "6", "--generations", "2", "--parents", "2", "--mutations", "2", "--crossovers", "2",
         "--recal-batches", "1", *RUNTIME]


def space_of(run: str):
    args = SPACES[run]
    options = dict(a.split("=") for a in args[3::2])
    return get_space(args[1], **{k: int(v) if v.isdigit() else v == "true" for k, v in options.items()})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished 1-epoch supernet per space (on 64 digits per split), in one store."""
    root = tmp_path_factory.mktemp("supernets")
    for run, sample in (("tiny", ["--archs", "111"]), ("nb", ["--sample", "1"]), ("darts", ["--sample", "1"])):
        assert main(["supernet", *SPACES[run], *sample, "--data-option", "limit=64", "--epochs", "1",
                     "--batch-size", "64", "--dense-last", "0", "--store", str(root / "r.db"), "--run", run,
                     "--run-dir", str(root / run), *RUNTIME]) == 0
    return root


@pytest.fixture
def work(trained, tmp_path):
    """A copy of the trained supernets for one test; ``work.args(run)`` names store and run."""
    shutil.copytree(trained, tmp_path / "w")
    root = tmp_path / "w"

    class Work:
        db = root / "r.db"

        @staticmethod
        def args(run):
            return ["evolve", "--run", run, "--store", str(root / "r.db"), "--run-dir", str(root / run)]

    return Work


@pytest.fixture
def scored(monkeypatch):
    """Counts every architecture the supernet scores (the evaluator calls of the search)."""
    seen: Counter = Counter()
    real = evolve_module.evaluate_archs

    def counting(model, archs, *args, **kwargs):
        for a in archs:
            seen[a] += 1
        return real(model, archs, *args, **kwargs)

    monkeypatch.setattr(evolve_module, "evaluate_archs", counting)
    return seen


def rows_of(db, run_id):
    with Store(db) as store:
        return store.candidates(run_id), store.run_metrics(run_id), store.get_run(run_id)


def test_constrained_two_objective_search_stores_front_and_exports_official_names(work, tmp_path, capsys):
    export = tmp_path / "front.txt"
    out = tmp_path / "out"
    assert main([*work.args("tiny"), *SMALL, "--objectives", "acc,params", "--max-params", "1150",
                 "--export", str(export), "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    rows, metrics, run = rows_of(work.db, "evolve/tiny/evolution/0")
    assert run["kind"] == "evolve" and run["status"] == "done" and run["config"]["constraints"] == {"max_params": 1150}
    assert len(rows) == 12 and len({r["arch"] for r in rows}) == 12 and [r["position"] for r in rows] == list(range(12))
    assert all(r["params"] <= 1150 for r in rows)
    assert [r["generation"] for r in rows] == [0] * 6 + [1] * 6 and {r["origin"] for r in rows[:6]} == {"random"}
    # the stored front is the brute-force Pareto front of the stored candidates
    mask = pareto_front([[r["score"], r["params"]] for r in rows], [True, False])
    assert [r["on_front"] for r in rows] == mask.tolist()
    redraws = sum(m["value"] for m in metrics if m["name"] == "redraws")
    duplicates = sum(m["value"] for m in metrics if m["name"] == "duplicates")
    assert f"{int(redraws)} draws broke a constraint, {int(duplicates)} were evaluated before" in printed
    assert {m["step"] for m in metrics if m["name"] == "redraws"} == {0, 1}
    # the export: the front, best score first, each line taken as it is by `wsnas cost` and `wsnas groundtruth`
    front = sorted((r for r in rows if r["on_front"]), key=lambda r: (-r["score"], r["position"]))
    lines = export.read_text().splitlines()
    assert lines == [r["arch"] for r in front]
    space = space_of("tiny")
    for line, row in zip(lines, front):
        assert cost_of(space, space.parse(line), "digits")["params"] == row["params"]
    assert main(["cost", *SPACES["tiny"], "--arch", lines[0], "--dataset", "digits", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == front[0]["params"]
    gt = tmp_path / "gt.db"
    assert main(["groundtruth", *SPACES["tiny"], "--archs", ",".join(lines), "--epochs", "1", "--data-option",
                 "limit=50", "--store", str(gt), *RUNTIME]) == 0
    with Store(gt) as store:
        assert sorted(r["arch"] for r in store.groundtruth()) == sorted(lines)
    assert (out / "candidates.png").stat().st_size > 1000


def test_an_interrupted_search_resumes_without_evaluating_twice_and_ends_as_an_uninterrupted_one(
        work, trained, tmp_path, capsys, scored, monkeypatch):
    reference = tmp_path / "reference"
    shutil.copytree(trained, reference)
    args = [*SMALL, "--method", "evolution", "--seed", "3", "--objectives", "acc,mflops"]
    assert main(["evolve", "--run", "tiny", "--store", str(reference / "r.db"), "--run-dir",
                 str(reference / "tiny"), *args, "--out-dir", str(tmp_path / "o1")]) == 0
    expected_out = capsys.readouterr().out
    assert sum(scored.values()) == 12
    scored.clear()
    counting = evolve_module.evaluate_archs
    calls = []

    def dying(model, archs, *a, **kw):  # killed halfway through the second batch (generation 1's)
        calls.append(len(archs))
        if len(calls) == 2:
            counting(model, archs[:3], *a, **kw)
            raise KeyboardInterrupt
        return counting(model, archs, *a, **kw)

    monkeypatch.setattr(evolve_module, "evaluate_archs", dying)
    assert main([*work.args("tiny"), *args, "--out-dir", str(tmp_path / "o2")]) == 130
    rows, _, run = rows_of(work.db, "evolve/tiny/evolution/3")
    assert calls == [6, 6]  # one evaluator call per generation
    assert run["status"] == "interrupted" and len(rows) == 6  # the batch in flight is lost, nothing before it
    assert len({r["seconds"] for r in rows}) == 1 and rows[0]["seconds"] > 0  # the batch's time, shared evenly
    monkeypatch.setattr(evolve_module, "evaluate_archs", counting)
    scored.clear()
    capsys.readouterr()
    assert main([*work.args("tiny"), *args, "--out-dir", str(tmp_path / "o2")]) == 0
    resumed_out = capsys.readouterr().out
    assert max(scored.values()) == 1 and sum(scored.values()) == 6  # the lost batch again, the first not
    assert "12 candidates (6 new, 6 read back from the store)" in resumed_out
    keys = ("arch", "arch_index", "generation", "position", "origin", "score", "loss", "params", "mflops", "on_front")
    got, metrics, run = rows_of(work.db, "evolve/tiny/evolution/3")
    want, want_metrics, _ = rows_of(reference / "r.db", "evolve/tiny/evolution/3")
    assert run["status"] == "done"
    assert [{k: r[k] for k in keys} for r in got] == [{k: r[k] for k in keys} for r in want]
    strip = lambda ms: [(m["name"], m["step"], m["value"]) for m in ms]  # noqa: E731
    assert strip(metrics) == strip(want_metrics)
    same = lambda text: [re.sub(r" \(\d+ architectures scored .*\)", "", line).replace("o1", "o2")  # noqa: E731
                         for line in text.splitlines()[1:]]
    assert same(resumed_out) == same(expected_out) and "(6 architectures scored with the supernet now)" in resumed_out
    # a finished search reruns from the store alone
    scored.clear()
    assert main([*work.args("tiny"), *args, "--out-dir", str(tmp_path / "o2")]) == 0
    assert not scored and "(0 new, 12 read back from the store)" in capsys.readouterr().out


def test_latency_is_measured_once_per_architecture_cached_and_respected(work, tmp_path, capsys, monkeypatch):
    measured = Counter()

    def fake_latency(net, shape, device, **kw):  # deterministic: a millisecond per thousand parameters
        assert tuple(shape) == (1, 1, 8, 8)
        params = sum(p.numel() for p in net.parameters())
        measured[params] += 1
        return params / 1000

    monkeypatch.setattr(evolve_module, "measure_latency", fake_latency)
    for method in ("random", "evolution"):
        assert main([*work.args("tiny"), *SMALL, "--method", method, "--max-latency-ms", "1.15",
                     "--objectives", "acc,latency", "--out-dir", str(tmp_path / method)]) == 0
        rows, _, run = rows_of(work.db, f"evolve/tiny/{method}/0")
        assert run["config"]["latency"]["threads"] == 1 and run["config"]["latency"]["batch"] == 1
        assert all(r["latency_ms"] == r["params"] / 1000 <= 1.15 for r in rows) and len(rows) == 12
    with Store(work.db) as store:
        cached = store.conn.execute("SELECT arch, COUNT(*) FROM arch_costs WHERE metric = 'latency_ms' "
                                    "GROUP BY arch, key").fetchall()
    assert cached and all(n == 1 for _, n in cached)
    assert sum(measured.values()) == len(cached)  # the second search measured only what it had not seen
    assert "latency" in capsys.readouterr().out


def test_validation_on_tiny64_against_the_stored_ground_truth(work, tmp_path, capsys, scored):
    space = space_of("tiny")
    rng = np.random.default_rng(1)
    with Store(work.db) as store:
        store.add_groundtruth_many([{"space": "tiny64", "arch": space.format(a), "arch_index": i, "dataset": "digits",
                                     "seed": 0, "epochs": 1, "config": {"test": 1}, "test_acc": float(acc)}
                                    for i, (a, acc) in enumerate(zip(space.enumerate(), rng.uniform(0.5, 0.9, 64)))])
    out = tmp_path / "val"
    assert main([*work.args("tiny"), *SMALL, "--validate-seeds", "2", "--truth", "store", "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert max(scored.values()) == 1  # 4 searches and the exhaustive run share every score
    truth = load_truth(str(work.db))
    table = list(csv.DictReader(open(out / "validation.csv")))
    assert [int(r["evaluations"]) for r in table] == [6, 12]
    with Store(work.db) as store:
        for method in ("evolution", "random"):
            curves = [found_ranks(store.candidates(f"evolve/tiny/{method}/{s}"), truth)["found"] for s in (0, 1)]
            for row, n in zip(table, (6, 12)):
                ranks = []  # brute force: the best-scored of the first n, its rank in the truth
                for s in (0, 1):
                    first = store.candidates(f"evolve/tiny/{method}/{s}")[:n]
                    best = max(first, key=lambda c: (c["score"], -c["position"]))
                    ranks.append(1 + sum(truth.accuracy > truth.accuracy[truth.position(best["arch"])]))
                assert float(row[f"{method}_mean"]) == pytest.approx(np.mean(ranks))
                assert [c[n - 1] for c in curves] == ranks
        whole = store.candidates("evolve/tiny/exhaustive")
    assert len(whole) == 64 and {c["origin"] for c in whole} == {"exhaustive"}
    best = max(whole, key=lambda c: (c["score"], -c["position"]))
    rank = 1 + sum(truth.accuracy > truth.accuracy[truth.position(best["arch"])])
    assert f"top-1 over all 64 architectures (score {100 * best['score']:.2f}%) has true rank {rank} " in printed
    assert (out / "validation.png").stat().st_size > 1000 and "| evaluations |" in (out / "validation.md").read_text()


@pytest.fixture(scope="module")
def benchmark_table(tmp_path_factory):
    """A converted NAS-Bench-201 table (the `wsnas benchmark convert` format) for every cell."""
    from wsnas.groundtruth.benchmarks.nb201 import BENCHMARK_COLUMNS

    path = tmp_path_factory.mktemp("benchmark") / "nb201.csv"
    space = get_space("nb201")
    acc = np.random.default_rng(0).uniform(0.1, 0.95, len(space))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(BENCHMARK_COLUMNS)
        for i, arch in enumerate(space.enumerate()):
            w.writerow([i, space.format(arch), "cifar10", 200, "", f"{acc[i]:.6f}", 1.0, 100.0, 0.01, 3])
    return path


def test_validation_on_nb201_against_a_benchmark_table_and_its_export(work, tmp_path, capsys, benchmark_table):
    out = tmp_path / "val"
    truth = f"nb201-cifar10:{benchmark_table}"
    assert main([*work.args("nb"), *SMALL, "--validate-seeds", "2", "--truth", truth, "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Exhaustive" not in printed  # 15,625 cells: not scored exhaustively unless asked
    rows = list(csv.DictReader(open(out / "validation.csv")))
    table_truth = load_truth(truth)
    with Store(work.db) as store:
        ranks = {m: [found_ranks(store.candidates(f"evolve/nb/{m}/{s}"), table_truth)["found"][-1] for s in (0, 1)]
                 for m in ("evolution", "random")}
    for m in ranks:
        assert float(rows[-1][f"{m}_mean"]) == pytest.approx(np.mean(ranks[m]))
    # one search of its own, reusing the validation's scores, exported in the official string format
    export = tmp_path / "nb.txt"
    assert main([*work.args("nb"), *SMALL, "--seed", "1", "--export", str(export), "--truth", truth,
                 "--out-dir", str(tmp_path / "one")]) == 0
    printed = capsys.readouterr().out
    line = export.read_text().splitlines()
    assert len(line) == 1 and line[0].startswith("|") and "~0|+|" in line[0]
    assert "(0 new, 12 read back from the store)" in printed and f"rank {ranks['evolution'][1]} of 15625" in printed
    assert main(["cost", *SPACES["nb"], "--arch", line[0], "--dataset", "digits"]) == 0
    assert main(["groundtruth", *SPACES["nb"], "--archs", line[0], "--epochs", "1", "--data-option", "limit=50",
                 "--store", str(tmp_path / "gt.db"), *RUNTIME]) == 0
    with Store(tmp_path / "gt.db") as store:
        assert [r["arch"] for r in store.groundtruth()] == line


def test_darts_genotypes_are_searched_and_exported_as_genotype_strings(work, tmp_path, capsys):
    export = tmp_path / "genotypes.txt"
    with_bar = [a for a in SMALL if a != "--no-progress"]  # the progress bar: generation and best score so far
    assert main([*work.args("darts"), *with_bar, "--objectives", "acc,mflops", "--export", str(export),
                 "--out-dir", str(tmp_path / "o")]) == 0
    bar = capsys.readouterr().err
    rows, _, _ = rows_of(work.db, "evolve/darts/evolution/0")
    assert "evolve/darts/evolution/0 generation 2/2" in bar and f"best {max(r['score'] for r in rows):.4f}" in bar
    assert len(rows) == 12 and all(r["arch"].startswith("Genotype(normal=[") for r in rows)
    assert {r["origin"] for r in rows[6:]} <= {"mutation", "crossover", "random"}
    lines = export.read_text().splitlines()
    assert lines and all(line.startswith("Genotype(") for line in lines)
    capsys.readouterr()
    assert main(["cost", *SPACES["darts"], "--arch", lines[0], "--dataset", "digits", "--json"]) == 0
    stored = next(r for r in rows if r["arch"] == lines[0])
    assert json.loads(capsys.readouterr().out)["mflops"] == stored["mflops"]
    assert main(["groundtruth", *SPACES["darts"], "--archs", lines[0], "--epochs", "1", "--batch-size", "32",
                 "--data-option", "limit=32", "--store", str(tmp_path / "gt.db"), *RUNTIME]) == 0
    with Store(tmp_path / "gt.db") as store:
        assert [r["arch"] for r in store.groundtruth()] == lines[:1]


def _store_with_other_runs(db):
    with Store(db) as store:
        store.ensure_run("unfinished", "supernet", {"x": 1})
        store.set_run_status("unfinished", "interrupted")
        store.ensure_run("search/tiny64/darts-softmax/0", "search", {"x": 2})


@pytest.mark.parametrize("args, fragment", [
    (["--run", "nope"], "no run 'nope' in"),
    (["--run", "unfinished"], "supernet run 'unfinished' is not finished (status interrupted)"),
    (["--run", "search/tiny64/darts-softmax/0"], "is a differentiable search (kind search)"),
    (["--objectives", "acc,speed"], "unknown objective 'speed'; accepted: acc, params, mflops, latency"),
    (["--objectives", "mflops"], "must include acc"),
    (["--population", "-1"], "--population must be an integer of at least 1, got -1"),
    (["--generations", "0"], "--generations must be an integer of at least 1, got 0"),
    (["--mutations", "-3"], "--mutations must be an integer of at least 0, got -3"),
    (["--mutation-prob", "1.5"], "--mutation-prob must be a probability in [0, 1], got 1.5"),
    (["--parents", "7"], "--parents 7 exceeds --population 6"),
    (["--max-params", "-5"], "--max-params must be a positive number, got -5"),
    (["--recal-batches", "0"], "--recal-batches must be a positive integer, got 0"),
    (["--eval-arch-batch", "0"], "--eval-arch-batch must be a positive integer or auto, got '0'"),
    (["--validate-seeds", "-1"], "--validate-seeds must be non-negative, got -1"),
    (["--validate-seeds", "2"], "--validate-seeds compares the searches with a ground truth; give --truth"),
    (["--generations", "20"], "a budget of 120 evaluations (--population 6 x --generations 20) exceeds the 64"),
    (["--truth", "nowhere.csv"], "ground truth 'nowhere.csv' is neither a built-in table nor a file"),
])
def test_bad_input_is_one_line_and_exit_2_before_any_work(work, capsys, args, fragment):
    _store_with_other_runs(work.db)
    with Store(work.db) as store:
        before = store.tables()
    code = main([*work.args("tiny"), *SMALL, *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and fragment in err and "\n" not in err, err
    with Store(work.db) as store:
        assert store.tables() == before and not store.list_runs("evolve")


def test_a_missing_store_and_checkpoint_are_one_line_errors(work, tmp_path, capsys):
    assert main(["evolve", "--run", "tiny", "--store", str(tmp_path / "none.db"), *RUNTIME]) == 2
    assert "results store" in capsys.readouterr().err and not (tmp_path / "none.db").exists()
    assert main(["evolve", "--run", "tiny", "--store", str(work.db), "--run-dir", str(tmp_path / "gone"), *SMALL]) == 2
    assert "no checkpoint of supernet run 'tiny'" in capsys.readouterr().err


def test_a_corrupt_foreign_or_unfinished_checkpoint_is_a_one_line_error(work, tmp_path, capsys):
    import torch

    checkpoint = work.db.parent / "tiny" / "checkpoint.pt"
    good = checkpoint.read_bytes()
    state = torch.load(checkpoint, weights_only=True)
    cases = [
        (lambda: checkpoint.write_bytes(b"garbage"), "cannot be read (UnpicklingError)"),
        (lambda: checkpoint.write_bytes((work.db.parent / "nb" / "checkpoint.pt").read_bytes()),
         "belongs to a run with other settings"),
        (lambda: torch.save({**state, "epoch": 0}, checkpoint),
         "is not the final checkpoint of supernet run 'tiny' (epoch 0 of 1); give the run's own --run-dir"),
        (lambda: torch.save({k: v for k, v in state.items() if k != "optimizer"}, checkpoint), "it lacks 'optimizer'"),
    ]
    for spoil, fragment in cases:
        spoil()
        code = main([*work.args("tiny"), *SMALL, "--out-dir", str(tmp_path / "o")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and fragment in err and "\n" not in err, err
        assert "delete" not in err and str(checkpoint) in err
    checkpoint.write_bytes(good)
    assert main([*work.args("tiny"), *SMALL, "--out-dir", str(tmp_path / "o")]) == 0  # the same search resumes
