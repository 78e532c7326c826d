"""The fixed-alpha supernet that DARTS-PT selects from (ruocwang/darts-pt): its held-out half."""

import pytest
import torch

from wsnas.evaluator import EvalConfig
from wsnas.strategies import get_strategy
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import SupernetConfig, SupernetTrainer


def _trainer(space, data, tmp_path, strategy, *, seed=0, batch_size=32, epochs=1):
    cfg = SupernetConfig(train=TrainConfig(epochs=epochs, batch_size=batch_size), eval=EvalConfig(batch_size=64),
                         dense_last=0, eval_every_epoch=False)
    return SupernetTrainer(space, data, strategy, cfg, seed=seed, run_dir=tmp_path, progress=False, archs=[])


@pytest.mark.parametrize("options, weights, arch", [
    ({"fixed_alpha": True}, "first half", "second half"),
    ({"fixed_alpha": True, "arch_split": "valid"}, "train", "valid"),
    ({"fixed_alpha": True, "single_level": True}, "train", "train"),
])
def test_a_fixed_alpha_supernet_trains_on_the_bilevel_searchs_weight_split(small_space, small_digits, tmp_path,
                                                                            options, weights, arch):
    """The authors' fixed-alpha run ('blank', exp_scripts/blank-201.sh) is train_search.py with the
    architecture step a no-op: the weights train on the first half of the training data, and PT
    scores on the second."""
    half = len(small_digits.train) // 2
    x = {"first half": small_digits.train.x[:half], "second half": small_digits.train.x[half:],
         "train": small_digits.train.x, "valid": small_digits.valid.x}
    trainer = _trainer(small_space, small_digits, tmp_path, get_strategy("darts", **options), batch_size=32)
    assert torch.equal(trainer.weight_split.x, x[weights]) and torch.equal(trainer.arch_split.x, x[arch])
    learned = _trainer(small_space, small_digits, tmp_path / "learned",
                       get_strategy("darts", **{k: v for k, v in options.items() if k != "fixed_alpha"}))
    assert torch.equal(trainer.weight_split.x, learned.weight_split.x)  # the same split as with alpha learned
    strategy, arch_batches = trainer.strategy, []
    step = strategy.step

    def recording(x, y, valid_batch=None, **kwargs):
        arch_batches.append(valid_batch)
        return step(x, y, valid_batch, **kwargs)

    strategy.step = recording
    trainer.train()
    assert len(arch_batches) == -(-len(x[weights]) // 32) and set(arch_batches) == {None}
    assert float(strategy.arch.alpha.detach().abs().max()) == 0.0  # uniform, never updated
