"""Data-parallel supernet training: two CPU processes (gloo, file:// rendezvous) equal one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from wsnas.core import distributed
from wsnas.core.errors import WsnasError
from wsnas.data import Split, load_dataset
from wsnas.evaluator import EvalConfig
from wsnas.spaces import get_space
from wsnas.store import Store
from wsnas.strategies import get_strategy
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import CHECKPOINT, SupernetConfig, SupernetTrainer

TRAIN = 67  # global batches of 32, 32, 3: the last one splits 2 + 1
SEED = 5


def _data():
    data = load_dataset("digits")

    def cut(split: Split, n: int) -> Split:
        return Split(split.x[:n].clone(), split.y[:n].clone())

    return dataclasses.replace(data, train=cut(data.train, TRAIN), valid=cut(data.valid, 48),
                               test=cut(data.test, 16))


def _cfg(epochs: int = 2) -> SupernetConfig:
    # a small learning rate: this tiny network amplifies float32 rounding over many steps
    return SupernetConfig(train=TrainConfig(epochs=epochs, batch_size=32, lr=0.002, lr_min=0.0002),
                          eval=EvalConfig(bn_mode="recal", recal_batches=2, recal_batch_size=32,
                                          batch_size=64), dense_last=0)


def _trainer(run_dir, *, store=None, replica=None, strategy="uniform", order_seed=None):
    space = get_space("tiny64", channels=4, stem_channels=8)
    return SupernetTrainer(space, _data(), get_strategy(strategy, order_seed=order_seed), _cfg(),
                           seed=SEED, run_dir=run_dir,
                           store=store, run_id=None if store is None else "dp", progress=False,
                           archs=list(space.enumerate())[:4], replica=replica)


def _worker(rank: int, world: int, init: str, out: str, stop_after: int | None) -> None:
    torch.set_num_threads(1)
    with distributed.process_group(init_method=init, rank=rank, world_size=world) as replica:
        store = Store(f"{out}/r.db") if rank == 0 else None
        trainer = _trainer(f"{out}/run", store=store)
        assert trainer.replica is not None and trainer.replica.rank == rank
        if store is not None:
            store.ensure_run("dp", "supernet", trainer.config(), seed=SEED)
        resumed = trainer.try_resume()
        archs = []

        def record(step, result):
            archs.append(trainer.space.option_indices(result.arch))
            if stop_after is not None and step == stop_after:
                raise KeyboardInterrupt

        try:
            trainer.train(on_step=record)
        except KeyboardInterrupt:
            pass
        replica.barrier()
        torch.save({"state": trainer.supernet.state_dict(), "archs": archs, "resumed": resumed,
                    "history": trainer.history}, f"{out}/rank{rank}.pt")
        if store is not None:
            store.close()


def _spawn(tmp_path, out, stop_after=None):
    out.mkdir(exist_ok=True)
    init = f"file://{tmp_path / ('rendezvous-' + out.name + str(stop_after))}"
    mp.spawn(_worker, args=(2, init, str(out), stop_after), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


def _assert_close(a: dict, b: dict, exact: bool = False) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if exact:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-5, msg=k)


def test_two_ranks_equal_one_process(tmp_path):
    ranks = _spawn(tmp_path, tmp_path / "dp")
    single = _trainer(tmp_path / "single")
    single_archs = []
    single.train(on_step=lambda step, r: single_archs.append(single.space.option_indices(r.arch)))

    # the same path at every step on both ranks, and the single process's paths
    assert len(single_archs) == single.total_steps == 6
    assert ranks[0]["archs"] == ranks[1]["archs"] == single_archs
    # identical weights (and BN statistics) on both ranks, equal to the single process
    _assert_close(ranks[0]["state"], ranks[1]["state"], exact=True)
    _assert_close(ranks[0]["state"], single.supernet.state_dict())
    for h_dp, h_one in zip(ranks[0]["history"], single.history, strict=True):
        assert h_dp["train_loss"] == pytest.approx(h_one["train_loss"], abs=1e-5)
        assert h_dp["train_acc"] == h_one["train_acc"]
        assert h_dp["mean_child_acc"] == pytest.approx(h_one["mean_child_acc"], abs=1e-6)
    # only rank 0 wrote the checkpoint and the store
    assert (tmp_path / "dp" / "run" / CHECKPOINT).exists()
    with Store(tmp_path / "dp" / "r.db") as store:
        steps = store.train_steps("dp")
        assert [r["arch_index"] for r in steps] == [single.space.index(single.space.from_option_indices(a))
                                                     for a in single_archs]
        assert [lab for lab in store.checkpoints("dp") if lab.startswith("epoch:")] == ["epoch:1", "epoch:2"]


def test_two_ranks_resume_from_the_same_checkpoint(tmp_path):
    out = tmp_path / "dp"
    stopped = _spawn(tmp_path, out, stop_after=4)  # stop in the second epoch (3 steps per epoch)
    assert not stopped[0]["resumed"] and len(stopped[0]["history"]) == 1
    resumed = _spawn(tmp_path, out)
    assert resumed[0]["resumed"] and resumed[1]["resumed"]
    assert len(resumed[0]["history"]) == 2
    assert resumed[0]["archs"] == resumed[1]["archs"] and len(resumed[0]["archs"]) == 3
    _assert_close(resumed[0]["state"], resumed[1]["state"], exact=True)
    single = _trainer(tmp_path / "single")
    single.train()
    _assert_close(resumed[0]["state"], single.supernet.state_dict())


def _diverging_worker(rank: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    with distributed.process_group(init_method=init, rank=rank, world_size=2):
        trainer = _trainer(f"{out}/run", order_seed=rank)  # a wrongly seeded sampler on rank 1
        try:
            trainer.train()
        except WsnasError as exc:
            (Path(out) / f"error{rank}.txt").write_text(str(exc))


def test_ranks_sampling_different_paths_stop_with_an_error(tmp_path):
    mp.spawn(_diverging_worker, args=(f"file://{tmp_path / 'rendezvous'}", str(tmp_path)), nprocs=2)
    for rank in range(2):
        assert "ranks sampled different paths" in (tmp_path / f"error{rank}.txt").read_text()


def test_batch_size_not_divisible_by_world_size(tmp_path):
    with pytest.raises(WsnasError, match="batch size 32 is not divisible by the world size 3"):
        _trainer(tmp_path, replica=distributed.Replica(rank=0, world_size=3))


def test_last_batch_smaller_than_world_size(tmp_path):
    # 67 samples in batches of 32 leave 3 samples for the last one: fewer than 4 ranks
    with pytest.raises(WsnasError, match="last batch of an epoch holds 3 samples"):
        _trainer(tmp_path, replica=distributed.Replica(rank=0, world_size=4))


def test_shards_are_contiguous_and_cover_the_batch():
    replica = distributed.Replica(rank=1, world_size=2)
    x = torch.arange(7)
    assert replica.shard_sizes(7) == [4, 3]
    assert replica.shard(x).tolist() == [4, 5, 6]
    assert distributed.Replica(rank=0, world_size=2).shard(x).tolist() == [0, 1, 2, 3]


def test_not_launched_by_torchrun_is_single_process(monkeypatch):
    for var in distributed.ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    with distributed.process_group() as replica:
        assert replica is None
    assert distributed.is_main() and distributed.world_size() == 1
