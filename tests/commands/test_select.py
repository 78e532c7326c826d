"""`wsnas select` with a selection method defined here: registering a Selector is all it takes."""

import numpy as np
import pytest

from wsnas.cli import main
from wsnas.selection import Selector, register_selector, selection_names, unregister_selector
from wsnas.spaces import get_space
from wsnas.store import Store

# limit=200: select reloads the search's data with the options it was loaded with
SEARCH = ["search", "--space-option", "channels=4", "--space-option", "stem_channels=8", "--epochs", "1",
          "--no-progress", "--threads", "1", "--data-option", "limit=200"]
RUN = "search/tiny64/darts-softmax/0"


class LowestWeight(Selector):
    """The op with the lowest architecture weight on every edge: the opposite of magnitude."""

    name = "lowest"
    seen: list = []  # the weights of every call

    def select(self, trainer, data, *, progress=True):
        weights = np.array(trainer.strategy.arch.selection_weights())
        LowestWeight.seen.append(weights)
        return trainer.space.from_option_indices([int(np.argmin(row)) for row in weights])


@pytest.fixture
def lowest():
    register_selector(LowestWeight)
    LowestWeight.seen.clear()
    yield LowestWeight
    unregister_selector(LowestWeight.name)


def test_a_selector_registered_here_selects_a_finished_search(tmp_path, capsys, lowest):
    db, run_dir = str(tmp_path / "r.db"), str(tmp_path / "run")
    assert main([*SEARCH, "--select", "magnitude", "--store", db, "--run-dir", run_dir]) == 0
    capsys.readouterr()
    assert main(["select", "--run", RUN, "--store", db, "--run-dir", run_dir, "--method", "lowest",
                 "--truth", "tiny64-cifar10", "--no-progress", "--threads", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    # the selector ran once, on the search's final architecture weights
    assert len(lowest.seen) == 1
    weights = lowest.seen[0]
    space = get_space("tiny64", channels=4, stem_channels=8)
    lowest_arch = space.format(space.from_option_indices([int(np.argmin(row)) for row in weights]))
    highest_arch = space.format(space.from_option_indices([int(np.argmax(row)) for row in weights]))
    assert lowest_arch != highest_arch
    with Store(db) as store:
        rows = {r["method"]: r for r in store.selections(RUN)}
    assert set(rows) == {"magnitude", "lowest"}
    assert rows["magnitude"]["arch"] == highest_arch  # the search's own choice, from the same weights
    row = rows["lowest"]
    assert row["arch"] == lowest_arch and row["arch_index"] == space.index(space.parse(lowest_arch))
    assert row["truth_source"] == "tiny64-cifar10" and 0 < row["truth"] < 1 and 1 <= row["truth_rank"] <= 64
    assert out == [f"lowest: {lowest_arch}  ground truth {row['truth']:.4f} (rank {row['truth_rank']})"]


def test_the_accepted_names_come_from_the_registry(tmp_path, capsys, lowest):
    assert selection_names() == ("magnitude", "lowest", "pt")
    for command, option in (("select", "--method"), ("search", "--select")):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "selection methods" in (help_text := " ".join(capsys.readouterr().out.split()))
        assert "magnitude, lowest, pt" in help_text, option


@pytest.mark.parametrize("args", [
    ["select", "--run", RUN, "--method", "lowest,best"],
    ["search", "--select", "lowest,best", "--epochs", "1"],
])
def test_an_unknown_method_is_one_line_before_any_work(tmp_path, capsys, lowest, args):
    db = tmp_path / "r.db"
    assert main([*args, "--store", str(db), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown selection 'best'; accepted: magnitude, lowest, pt" in err
    assert not db.exists() and not (tmp_path / "run").exists()


def test_an_unregistered_method_is_unknown(tmp_path, capsys):
    assert "lowest" not in selection_names()
    assert main(["select", "--run", RUN, "--method", "lowest", "--store", str(tmp_path / "r.db")]) == 2
    assert "unknown selection 'lowest'; accepted: magnitude, pt" in capsys.readouterr().err
