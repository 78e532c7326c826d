import pytest
import torch

from wsnas.errors import WsnasError
from wsnas.evaluator import EvalConfig
from wsnas.groundtruth.train import TrainConfig
from wsnas.store import Store
from wsnas.strategies import get_strategy
from wsnas.trainer import CHECKPOINT, SupernetConfig, SupernetTrainer


def _cfg(epochs=3, dense_last=5, bn_mode="running"):
    return SupernetConfig(train=TrainConfig(epochs=epochs, batch_size=64),
                          eval=EvalConfig(bn_mode=bn_mode, batch_size=64), dense_last=dense_last)


def _trainer(space, data, tmp_path, strategy="uniform", store=None, run_id=None, **kw):
    return SupernetTrainer(space, data, get_strategy(strategy), _cfg(**kw), seed=7,
                           run_dir=tmp_path, store=store, run_id=run_id, progress=False,
                           archs=list(space.enumerate())[:8])


@pytest.mark.parametrize("strategy", ["uniform", "shuffle"])
def test_interrupted_and_resumed_equals_uninterrupted(small_space, small_digits, tmp_path, strategy):
    full = _trainer(small_space, small_digits, tmp_path / "a", strategy)
    full.train()

    class Stop(Exception):
        pass

    part = _trainer(small_space, small_digits, tmp_path / "b", strategy)
    steps = part.steps_per_epoch

    def stop_mid_second_epoch(step, _):
        if step == steps + 1:
            raise Stop

    with pytest.raises(Stop):
        part.train(on_step=stop_mid_second_epoch)
    assert part.epoch == 1 and (tmp_path / "b" / CHECKPOINT).exists()

    resumed = _trainer(small_space, small_digits, tmp_path / "b", strategy)
    assert resumed.try_resume() and resumed.epoch == 1
    resumed.train()
    for (k, a), (_, b) in zip(full.supernet.state_dict().items(), resumed.supernet.state_dict().items()):
        assert torch.equal(a, b), k
    assert full.history[-1]["train_loss"] == resumed.history[-1]["train_loss"]


def test_predictions_and_steps_are_stored(small_space, small_digits, tmp_path):
    with Store(tmp_path / "r.db") as store:
        trainer = _trainer(small_space, small_digits, tmp_path / "run", "round_robin",
                           store=store, run_id="sn", dense_last=5)
        store.ensure_run("sn", "supernet", trainer.config(), seed=7)
        trainer.train()
        labels = store.checkpoints("sn")
        total = trainer.total_steps
        assert [lab for lab in labels if lab.startswith("epoch:")] == ["epoch:1", "epoch:2", "epoch:3"]
        assert sorted(int(lab[5:]) for lab in labels if lab.startswith("step:")) == list(
            range(total - 4, total + 1))
        _, archs, matrix = store.prediction_matrix("sn")
        assert matrix.shape == (8, 8) and archs[0] == "111"
        steps = store.train_steps("sn")
        assert [r["step"] for r in steps] == list(range(1, total + 1))
        assert [r["arch_index"] for r in steps] == [i % 64 for i in range(total)]


def test_resume_refuses_a_checkpoint_of_other_settings(small_space, small_digits, tmp_path):
    _trainer(small_space, small_digits, tmp_path, epochs=1, dense_last=0).train()
    other = _trainer(small_space, small_digits, tmp_path, epochs=2, dense_last=0)
    with pytest.raises(WsnasError, match="belongs to a run with other settings"):
        other.try_resume()
    (tmp_path / CHECKPOINT).write_bytes(b"garbage")
    with pytest.raises(WsnasError, match="cannot be read"):
        _trainer(small_space, small_digits, tmp_path, epochs=1, dense_last=0).try_resume()
