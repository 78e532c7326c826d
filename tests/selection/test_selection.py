"""Architecture selection: magnitude vs perturbation (DARTS-PT), and a DARTS-space search end to end."""

import pytest
import torch
import torch.nn.functional as F

from wsnas.core.errors import WsnasError
from wsnas.data import iterate_batches
from wsnas.evaluator import EvalConfig
from wsnas.selection import PTConfig, get_selector, select_magnitude, select_pt
from wsnas.selection.search import SearchConfig, reselect, run_search
from wsnas.spaces import get_space
from wsnas.store import Store
from wsnas.strategies import get_strategy
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import SupernetConfig, SupernetTrainer


def _trainer(space, data, tmp_path, strategy, epochs=1, batch_size=32):
    cfg = SupernetConfig(train=TrainConfig(epochs=epochs, batch_size=batch_size), eval=EvalConfig(batch_size=64),
                         dense_last=0, eval_every_epoch=False)
    return SupernetTrainer(space, data, strategy, cfg, seed=0, run_dir=tmp_path, progress=False, archs=[])


def test_pt_and_magnitude_differ_by_design(small_space, small_digits, tmp_path):
    """Edge 0: the largest weight sits on an op whose output is zero (removing it changes nothing),
    while a lighter op carries the signal the network was trained on: magnitude picks the heavy
    op, PT the one whose removal hurts."""
    trainer = _trainer(small_space, small_digits, tmp_path, get_strategy("darts"))
    net, strategy = trainer.supernet, trainer.strategy
    arch = small_space.parse("333")  # sep_conv_5x5 on every edge
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    net.train()
    for _ in range(8):
        for x, y in iterate_batches(small_digits.train, 32, shuffle=True, generator=gen):
            loss = F.cross_entropy(net(x, arch), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        for cell in net.cells:
            for name in ("sep_conv_3x3", "dil_conv_5x5"):
                for p in cell.edges[0].candidates[name].parameters():
                    p.zero_()
        logits = torch.full((3, 4), -10.0)
        logits[:, 2] = 10.0
        logits[0] = torch.tensor([-10.0, 2.0, 0.0, -10.0])  # edge 0: sep_conv_3x3 (zero output) heaviest
        strategy.arch.alpha.copy_(logits)
    assert small_space.format(select_magnitude(strategy)) == "233"
    assert small_space.format(get_selector("magnitude").select(trainer, small_digits)) == "233"
    chosen = get_selector("pt", tune=False).select(trainer, small_digits, progress=False)  # select_pt, untuned
    assert small_space.format(chosen) == "333"
    assert strategy.decided == {0: 2, 1: 2, 2: 2}


def test_pt_from_a_fixed_alpha_supernet_is_reproducible(small_space, small_digits, tmp_path):
    """Trained and selected twice with the same seeds: the same architecture and decisions (PT's
    choices themselves are tested in test_pt.py)."""
    picks = []
    for run in ("a", "b"):
        trainer = _trainer(small_space, small_digits, tmp_path / run, get_strategy("darts", fixed_alpha=True))
        trainer.train()
        lines = []
        arch = select_pt(trainer, small_digits, PTConfig(interval=1), progress=False, log=lines.append)
        picks.append((small_space.format(arch), lines, dict(trainer.strategy.decided)))
    assert picks[0] == picks[1]


def test_darts_space_search_emits_a_genotype_the_evaluation_network_builds(small_digits, tmp_path):
    space = get_space("darts", search_channels=4, search_layers=3, channels=4, layers=3, auxiliary=False)
    for name, options in (("darts", {}), ("pcdarts", {"k": 2}), ("gdas", {})):
        trainer = _trainer(space, small_digits, tmp_path / name, get_strategy(name, **options), batch_size=64)
        trainer.train()
        archs = [select_magnitude(trainer.strategy)]
        if name == "darts":  # PT's DARTS-space rounds do not depend on the strategy: run them once
            archs.append(select_pt(trainer, small_digits, PTConfig(tune=False), progress=False))
            removed = [e for e, op in trainer.strategy.decided.items() if op is None]
            assert len(removed) == 2 * (1 + 2 + 3)  # nodes keep 2 of their 2, 3, 4, 5 inputs
        for arch in archs:
            text = space.format(arch)
            assert text.startswith("Genotype(normal=[") and "none" not in text
            net = space.build_network(space.parse(text), num_classes=10, in_channels=1)
            assert net(small_digits.valid.x[:2]).shape == (2, 10)


def test_reselect_rebuilds_a_finished_search_from_the_store(digits, tmp_path):
    space = get_space("tiny64", channels=4, stem_channels=8)
    cfg = SearchConfig(train=TrainConfig(epochs=1, batch_size=128), select=("magnitude",))
    db, run_dir = tmp_path / "r.db", tmp_path / "run"
    with Store(db) as store:
        searched = run_search(space, digits, get_strategy("darts"), cfg, seed=0, store=store, run_id="s",
                              run_dir=run_dir, truth=None, progress=False, log=lambda *_: None)
    rows = reselect(db, "s", [get_selector("magnitude")], run_dir=run_dir, truth_spec="tiny64-cifar10",
                    progress=False)
    assert [(r["method"], r["arch"]) for r in rows] == [(r["method"], r["arch"]) for r in searched]
    assert rows[0]["truth_source"] == "tiny64-cifar10" and 0 < rows[0]["truth"] < 1
    with Store(db) as store:
        assert store.selections("s")[0]["truth"] == rows[0]["truth"]  # the stored choice is replaced
    with pytest.raises(WsnasError, match=f"no search run 'x' in {db}; found: s$"):
        reselect(db, "x", [get_selector("magnitude")], run_dir=run_dir)
    with pytest.raises(WsnasError, match="no finished search checkpoint in .*elsewhere"):
        reselect(db, "s", [get_selector("magnitude")], run_dir=tmp_path / "elsewhere")
