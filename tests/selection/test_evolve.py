"""Scoring with a supernet run's shared weights (wsnas.selection.evolve.SharedWeights): its final
checkpoint loaded through the trainer, batches scored in one evaluator call with the numbers of
one-at-a-time scoring, and each candidate's share of its batch's time."""

from __future__ import annotations

import numpy as np
import pytest

from wsnas.cli import main
from wsnas.selection.evolve import ScoringConfig, SharedWeights, open_supernet_run
from wsnas.store import Store

RUNTIME = ["--no-progress", "--threads", "1"]
RUNS = {
    "tiny": ["--space", "tiny64", "--space-option", "channels=4", "--space-option", "stem_channels=8",
             "--space-option", "cells=2", "--archs", "111"],
    "nb": ["--space", "nb201", "--space-option", "channels=4", "--space-option", "cells_per_stage=1",
           "--sample", "1"],
    "group": ["--space", "tiny64", "--space-option", "channels=4", "--space-option", "stem_channels=8",
              "--space-option", "cells=1", "--archs", "111,444", "--sharing", "group:2", "--strategy", "rr"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One finished 1-epoch supernet per setting (64 digits per split), in one store."""
    root = tmp_path_factory.mktemp("supernets")
    for run, args in RUNS.items():
        assert main(["supernet", *args, "--data-option", "limit=64", "--epochs", "1", "--batch-size", "64",
                     "--dense-last", "0", "--store", str(root / "r.db"), "--run", run, "--run-dir", str(root / run),
                     *RUNTIME]) == 0
    with Store(root / "r.db") as store:
        return {run: open_supernet_run(store, run, root / run) for run in RUNS}


def _archs(space, n=8):
    rng = np.random.default_rng(0)
    out = []
    while len(out) < n:
        arch = space.random_arch(rng)
        if arch not in out:
            out.append(arch)
    return out


@pytest.mark.parametrize("run", list(RUNS))
def test_a_batch_scores_as_one_at_a_time_and_stacked_up_to_rounding(runs, run):
    supernet = runs[run]
    archs = _archs(supernet.space)
    scoring = ScoringConfig(recal_batches=2, recal_batch_size=16, batch_size=24)
    alone = SharedWeights(supernet, scoring)
    single = [alone.score(a) for a in archs]
    together = SharedWeights(supernet, scoring)
    batched = together.score_many(archs)
    assert [s[:2] for s in batched] == [s[:2] for s in single]  # the stem once for all: the same numbers
    assert together.evaluations == alone.evaluations == len(archs)
    stacked = SharedWeights(supernet, ScoringConfig(recal_batches=2, recal_batch_size=16, batch_size=24,
                                                    arch_batch=4)).score_many(archs)
    n = supernet.data_config["sizes"]["valid"]
    for (acc, loss, _), (acc1, loss1, _) in zip(stacked, single):
        assert loss == pytest.approx(loss1, rel=1e-4, abs=1e-5) and abs(acc - acc1) <= 1 / n + 1e-12


def test_a_batch_shares_its_time_and_takes_known_scores_from_the_cache(runs):
    supernet = runs["tiny"]
    weights = SharedWeights(supernet, ScoringConfig(recal_batches=1))
    archs = _archs(supernet.space, 6)
    first = weights.score_many(archs[:4])
    assert len({s[2] for s in first}) == 1 and first[0][2] > 0 and weights.evaluations == 4
    again = weights.score_many([archs[1], archs[4], archs[0], archs[5]])
    assert [s[2] == 0 for s in again] == [True, False, True, False] and again[1][2] == again[3][2]
    assert again[0][:2] == first[1][:2] and weights.evaluations == 6
    assert weights.score(archs[2]) == (*first[2][:2], 0.0)
    assert ScoringConfig(arch_batch=16).to_dict() == ScoringConfig().to_dict()  # not part of the identity
