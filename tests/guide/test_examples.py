"""Every example of docs/python.md runs (in process, tiny settings) and does what the guide says."""

from __future__ import annotations

import hashlib
import importlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from wsnas.data import load_dataset
from wsnas.spaces import get_space
from wsnas.store import Store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("rank_my_space", "own_tensors", "pada_gaea_loop", "read_store")


@pytest.fixture
def example(monkeypatch):
    """``example(name)``: the module ``examples.<name>``, imported with the repository root on the
    path, as ``python -m examples.<name>`` from the root imports it."""
    monkeypatch.syspath_prepend(str(ROOT))
    return lambda name: importlib.import_module(f"examples.{name}")


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_has_a_help_from_its_docstring(example, capsys, name):
    module = example(name)
    with pytest.raises(SystemExit) as stop:
        module.main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m examples.{name}") and module.__doc__.splitlines()[0] in out
    assert f"python -m examples.{name}" in module.__doc__  # the docstring says how to run it


def test_docs_python_md_points_to_every_example():
    guide = (ROOT / "docs" / "python.md").read_text()
    for name in EXAMPLES:
        assert f"examples/{name}.py" in guide


def test_rank_my_space_ranks_every_child_and_stores_the_scores(example, tmp_path, capsys):
    rank = example("rank_my_space")
    assert rank.main(["--epochs", "1", "--width", "4", "--limit", "200", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("27 children ranked by chain/uniform/0 after 1 epochs")
    rows = re.findall(r"^ *(\d+)  (\S+) +([0-9.]+)$", out, flags=re.M)
    assert [int(r[0]) for r in rows] == list(range(1, 28))
    space = get_space("examples.my_space:make_space")
    assert sorted(r[1] for r in rows) == sorted(space.format(a) for a in space.enumerate())
    printed = [float(r[2]) for r in rows]
    assert printed == sorted(printed, reverse=True)
    with Store(tmp_path / "results.db", read_only=True) as store:  # what a command would read
        stored = {p["arch"]: p["accuracy"] for p in store.predictions("chain/uniform/0", "epoch:1")}
        assert store.get_run("chain/uniform/0")["status"] == "done"
    assert {r[1]: float(r[2]) for r in rows} == {a: round(v, 3) for a, v in stored.items()}
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_own_tensors_become_a_dataset_and_the_best_child_a_network(example, tmp_path, capsys):
    own = example("own_tensors")
    data = own.my_data(150)
    assert (len(data.train), len(data.valid), len(data.test)) == (135, 15, 37)
    assert (data.name, data.num_classes, data.in_channels, data.image_size) == ("stripes", 3, 1, 12)
    assert data.class_names == own.CLASSES and sorted(set(data.valid.y.tolist())) == [0, 1, 2]
    result = own.train(data, tmp_path, epochs=1)
    ranking = result["ranking"]
    assert len({name for name, _ in ranking}) == 64
    assert [acc for _, acc in ranking] == sorted((acc for _, acc in ranking), reverse=True)
    # the best child alone, with its shared weights, predicts exactly as the supernet scored it
    assert result["network_acc"] == pytest.approx(ranking[0][1], abs=1e-6)  # a float32 mean
    assert result["network"].arch == result["best"]
    assert own.main(["--epochs", "1", "--train-images", "60"]) == 0
    out = capsys.readouterr().out
    assert "dataset stripes: 54 train / 6 valid / 15 test images, 3 classes, 1x12x12" in out
    assert "as a network of its own: test acc" in out


def test_pada_in_a_loop_of_your_own(example):
    loop = example("pada_gaea_loop")
    space, data = get_space("tiny64", channels=4, stem_channels=8), load_dataset("digits", limit=100)
    pada = loop.pada_loop(space, data, epochs=2, log=lambda *_: None)
    tau = 1 / 2  # mixed in after the second of two epochs
    assert pada.epoch == 2 and pada.tau == tau
    np.testing.assert_allclose(pada.probs.sum(1), 1.0)
    # max pooling has no convolution to credit (the authors' rule): it keeps only the uniform share
    pool = pada.ops.index("max_pool_3x3")
    assert pada.probs[0, pool] == pytest.approx((1 - tau) / 4)
    assert pada.probs[0].max() > 0.25 + 1e-3
    assert len(pada.q) == len(data.train) and float(pada.q.sum()) == pytest.approx(1.0)
    assert float(pada.q.max()) > 1.01 / len(data.train)  # the data order is no longer uniform


def test_gaea_step_is_the_exponentiated_gradient_and_the_loop_selects_its_argmax(example):
    loop = example("pada_gaea_loop")
    space, data = get_space("tiny64", channels=4, stem_channels=8), load_dataset("digits", limit=100)
    torch.manual_seed(0)
    supernet = space.build_supernet(num_classes=data.num_classes, in_channels=data.in_channels)
    relax = space.relaxation()
    arch = loop.ArchParams.for_relaxation(relax, param="gaea")
    weights = [p.detach().clone() for p in supernet.parameters()]
    theta = arch.alpha.detach().clone()
    x, y = data.train.x[:32], data.train.y[:32]
    loss = loop.gaea_step(supernet, relax, arch, arch.make_optimizer(), x, y)
    grad = arch.alpha.grad
    assert loss > 0 and float(grad.abs().max()) > 0
    expected = theta * torch.exp(-0.1 * grad)  # theta * exp(-eta * grad), eta = 0.1, per edge renormalised
    torch.testing.assert_close(arch.alpha.detach(), expected / expected.sum(1, keepdim=True))
    assert all(torch.equal(a, b) for a, b in zip(weights, supernet.parameters()))  # weights untouched
    arch, selected = loop.gaea_loop(space, data, epochs=1, log=lambda *_: None)
    w = arch.probabilities()
    np.testing.assert_allclose(w.sum(1), 1.0)
    assert list(space.option_indices(selected)) == [int(i) for i in w.argmax(1)]


def test_pada_gaea_loop_runs_from_its_command_line(example, capsys):
    assert example("pada_gaea_loop").main(["--epochs", "1", "--limit", "60"]) == 0
    out = capsys.readouterr().out
    assert "PA&DA epoch 1: op probabilities max_pool_3x3 0.250" in out and "GAEA epoch 1:" in out
    assert re.search(r"^selected: [1-4]{3}$", out, flags=re.M)


def test_read_store_reads_back_the_rows_the_study_wrote(example, tmp_path, capsys):
    read = example("read_store")
    path = tmp_path / "study.db"
    args = ["--store", str(path), "--epochs", "1", "--limit", "64"]
    assert read.main(args) == 0
    first = capsys.readouterr().out
    assert first.startswith(f"running the tiny study into {path}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result = read.read(path)
    assert read.main(args) == 0  # the store has the study: only read
    again = capsys.readouterr().out
    assert "running" not in again and again == first[first.index("\n") + 1:]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # read-only: not a byte changed
    # 9 children x 2 seeds of ground truth; 3 supernets, each scored after its epoch and each of its
    # last 4 mini-batches (64 training images: 4 batches of 16)
    assert len(result["groundtruth"]) == 18 and len(result["truth"]) == 9
    assert set(result["supernets"]) == {"insights/seeds/0", "insights/seeds/1", "insights/orders/0"}
    analysed = {i["run_id"]: i for g in result["analysis"]["groups"].values() for i in g["instances"]}
    for run_id, s in result["supernets"].items():
        assert sorted(s["checkpoints"]) == ["epoch:1", "step:1", "step:2", "step:3", "step:4"]
        assert s["predictions"] == 5 * 9 and len(s["archs"]) == 9
        assert s["gt_tau"] == pytest.approx(analysed[run_id]["final"]["gt_tau"])
        np.testing.assert_allclose(s["final"], analysed[run_id]["final"]["accuracy"])
    # and fine-tuning: 9 children scored before and after each of its 2 steps
    assert result["tables"]["predictions"] == 3 * 45 + 9 * 3
    assert re.search(r"insights/seeds/0: 5 checkpoints x 9 children; final GT-Tau (\S+) by hand, \1 in the analysis",
                     first)
