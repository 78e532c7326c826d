"""Ground-truth runs: the jobs, timed, and the best architectures read back from the store."""

import numpy as np
import pytest

from wsnas.groundtruth.run import run_groundtruth_with_best
from wsnas.store import Store
from wsnas.training.standalone import default_config


def test_run_with_best_ranks_the_trained_archs_by_their_mean_over_seeds(tmp_path, small_space, small_digits):
    cfg = default_config("digits").with_overrides(epochs=1, batch_size=128)
    archs = [small_space.resolve(a) for a in ("111", "222", "333")]
    with Store(tmp_path / "gt.db") as store:
        result = run_groundtruth_with_best(small_space, small_digits, cfg, seeds=[0, 1], archs=archs,
                                           store=store, progress=False, best=2)
        summary = result["summary"]
        assert (summary.trained, summary.skipped, summary.complete_seeds) == (6, 0, [0, 1])
        means: dict[str, list[float]] = {}
        for row in store.groundtruth():
            means.setdefault(row["arch"], []).append(row["test_acc"])
        # best first, ties in index order (the table's)
        expected = sorted(means, key=lambda a: (-np.mean(means[a]), small_space.index(small_space.parse(a))))[:2]
        assert [a for a, _ in result["best"]] == expected
        assert [acc for _, acc in result["best"]] == pytest.approx([np.mean(means[a]) for a in expected])
        assert result["seconds"] > 0
        # a rerun trains nothing, and ranks only the architectures asked for
        again = run_groundtruth_with_best(small_space, small_digits, cfg, seeds=[0, 1], archs=archs[2:],
                                          store=store, progress=False)
    assert again["summary"].trained == 0
    assert again["best"] == [("333", pytest.approx(np.mean(means["333"])))]
