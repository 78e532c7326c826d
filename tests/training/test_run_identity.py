"""A run's identity does not depend on how the strategy learns about partial sharing.

The expected values below are literals produced by the code before the strategy interface and
the sharing setting were made explicit (the trainer then received a ``GroupStrategy`` built by
the command): stored configs, their hashes, run ids and descriptions must stay what they were,
so existing stores and checkpoints still match.
"""

import json

import pytest

from wsnas.core.errors import WsnasError
from wsnas.evaluator import EvalConfig
from wsnas.store import Store, config_hash
from wsnas.strategies import STRATEGIES, get_strategy, strategy_from_description, strategy_names
from wsnas.supernet.sharing import parse_sharing
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import SupernetConfig, SupernetTrainer, trainer_config, trainer_from_config

SPACE = {"space": "tiny64", "dil": "5x5", "combine": "concat", "bn_momentum": 0.4, "channels": 4,
         "stem_channels": 8, "cells": 4}
DATA = {"name": "digits", "num_classes": 10, "in_channels": 1, "image_size": 8,
        "sizes": {"train": 192, "valid": 64, "test": 64}, "split_seed": 0, "augment": None,
        "mean": [0.30379329819277107], "std": [0.3755688426834244],
        "class_names": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        "source": "sklearn.datasets.load_digits"}
SUPERNET = {"train": {"epochs": 2, "batch_size": 64, "lr": 0.025, "lr_min": 0.001, "momentum": 0.9,
                      "weight_decay": 0.001, "grad_clip": None, "eval_batch_size": 1024, "auxiliary_weight": 0.0,
                      "drop_path_prob": 0.0, "cutout": 0},
            "eval": {"bn_mode": "running", "recal_batches": 10, "batch_size": 64, "recal_batch_size": 256},
            "eval_every_epoch": True, "dense_last": 0}
GROUP = {"space": SPACE, "data": DATA,
         "strategy": {"strategy": "groups", "order": "shuffle", "order_seed": 5, "sharing": "group:4:random@2",
                      "budget": "equal"},
         "seed": 3, "supernet": SUPERNET,
         "sharing": {"kind": "group", "groups": 4, "partition": "random", "partition_seed": 2,
                     "partition_file": None, "prefix": 0, "budget": "equal"}}
PREFIX = {"space": SPACE, "data": DATA, "strategy": {"strategy": "fixed_order", "order_seed": 7}, "seed": 3,
          "supernet": SUPERNET,
          "sharing": {"kind": "prefix", "groups": 1, "partition": "similarity", "partition_seed": 0,
                      "partition_file": None, "prefix": 2, "budget": "paper"}}


@pytest.mark.parametrize("name, spec, budget, order_seed, expected, digest", [
    ("shuffle", "group:4:random@2", "equal", 5, GROUP, "4c3f9a1582752ba4"),
    ("fixed-order", "prefix:2", "paper", 7, PREFIX, "0c2e2d8991caaaf9"),
])
def test_a_sharing_runs_config_is_what_it_was(small_space, small_digits, tmp_path, name, spec, budget, order_seed,
                                              expected, digest):
    sharing = parse_sharing(spec, budget=budget)
    cfg = SupernetConfig(train=TrainConfig(epochs=2, batch_size=64), eval=EvalConfig(batch_size=64), dense_last=0)
    trainer = SupernetTrainer(small_space, small_digits, get_strategy(name, order_seed=order_seed), cfg, seed=3,
                              run_dir=tmp_path, progress=False, archs=[], sharing=sharing)
    config = trainer.config()
    assert json.loads(json.dumps(config)) == expected
    assert config_hash(config) == digest
    # the config a study stores before training (experiments.instances) is the trainer's
    assert trainer_config(small_space, small_digits, get_strategy(name, order_seed=order_seed), cfg, 3,
                          sharing) == config
    assert not hasattr(trainer.supernet, "weight_bank")  # the bank travels as an argument


def test_every_strategy_describes_itself_as_it_did():
    assert {k: get_strategy(k).describe() for k in STRATEGIES} == {
        "round_robin": {"strategy": "round_robin", "order_seed": None},
        "fixed_order": {"strategy": "fixed_order", "order_seed": None},
        "shuffle": {"strategy": "shuffle", "order_seed": None},
        "uniform": {"strategy": "uniform", "order_seed": None},
        "pada": {"strategy": "pada", "paths": True, "data": True, "per_edge": False},
        "pada_path": {"strategy": "pada-path", "paths": True, "data": False, "per_edge": False},
        "pada_data": {"strategy": "pada-data", "paths": False, "data": True, "per_edge": False},
        "fairnas": {"strategy": "fairnas"},
        "darts": {"strategy": "darts", "param": "softmax", "single_level": False, "exclude": [], "arch_lr": None,
                  "edge_weights": False, "fixed_alpha": False, "order": 1},
        "gdas": {"strategy": "gdas", "param": "softmax", "single_level": False, "exclude": [], "arch_lr": None,
                 "edge_weights": False, "fixed_alpha": False, "tau_max": 10.0, "tau_min": 0.1,
                 "kl_weight": 0.0, "warmup_epochs": 0},
        "pcdarts": {"strategy": "pcdarts", "param": "softmax", "single_level": False, "exclude": [],
                    "arch_lr": None, "edge_weights": True, "fixed_alpha": False, "order": 1, "k": 4},
    }


def test_a_stored_description_rebuilds_its_strategy():
    made = [get_strategy(k) for k in STRATEGIES]
    made += [get_strategy("rr", order_seed=4), get_strategy("pada", per_edge=True, credit="path"),
             get_strategy("pada-path", per_edge=True), get_strategy("gdas", tau_max=5.0, warmup_epochs=2),
             get_strategy("pcdarts", k=2, param="gaea")]
    for strategy in made:
        rebuilt = strategy_from_description(json.loads(json.dumps(strategy.describe())))
        assert type(rebuilt) is type(strategy) and rebuilt.describe() == strategy.describe()
    grouped = get_strategy("shuffle", order_seed=5).with_sharing(parse_sharing("group:4:random@2", budget="equal"))
    sampler = strategy_from_description(grouped.describe())  # the sampler; the trainer applies the sharing
    assert sampler.describe() == {"strategy": "shuffle", "order_seed": 5}
    with pytest.raises(WsnasError, match="unknown strategy 'nope'"):
        strategy_from_description({"strategy": "nope"})


@pytest.mark.parametrize("config", [GROUP, PREFIX], ids=["group", "prefix"])
def test_a_stored_config_rebuilds_its_trainer(small_digits, tmp_path, config):
    trainer = trainer_from_config(config, small_digits, tmp_path, progress=False)
    assert json.loads(json.dumps(trainer.config())) == config and trainer.bank is not None
    assert not trainer.try_resume()  # nothing read until asked, and nothing there
    evaluated = {**PREFIX, "archs": [3, 17, 40]}
    assert trainer_from_config(evaluated, small_digits, tmp_path).config()["archs"] == [3, 17, 40]


def test_strategy_names_come_from_the_registry():
    assert strategy_names() == tuple(STRATEGIES)
    assert strategy_names(differentiable=True) == ("darts", "gdas", "pcdarts")
    assert strategy_names(differentiable=False) == ("round_robin", "fixed_order", "shuffle", "uniform", "pada",
                                                    "pada_path", "pada_data", "fairnas")


def test_group_sharing_orders_children_with_a_sampler_only():
    group, prefix = parse_sharing("group:2"), parse_sharing("prefix:1")
    grouped = get_strategy("rr", order_seed=4).with_sharing(group)
    assert grouped.describe() == {"strategy": "groups", "order": "round_robin", "order_seed": 4,
                                  "sharing": "group:2:similarity", "budget": "paper"}
    assert grouped.with_sharing(group) is grouped
    pada = get_strategy("pada")
    assert pada.with_sharing(prefix) is pada and pada.with_sharing(parse_sharing("group:1")) is pada
    with pytest.raises(WsnasError, match="unknown order within groups 'pada'; accepted: round_robin, fixed_order"):
        pada.with_sharing(group)


def test_the_supernet_command_names_a_group_run_by_its_order(tmp_path, capsys):
    from wsnas.cli import main

    db = tmp_path / "r.db"
    assert main(["supernet", "--space-option", "channels=4", "--space-option", "stem_channels=8", "--epochs", "1",
                 "--batch-size", "256", "--store", str(db), "--no-progress", "--threads", "1", "--archs", "111,444",
                 "--strategy", "rr", "--order-seed", "4", "--sharing", "group:2",
                 "--run-dir", str(tmp_path / "g")]) == 0
    assert "run supernet/round_robin/0/group:2:similarity:" in capsys.readouterr().out
    with Store(db) as store:
        config = store.get_run("supernet/round_robin/0/group:2:similarity")["config"]
    assert config["strategy"] == {"strategy": "groups", "order": "round_robin", "order_seed": 4,
                                  "sharing": "group:2:similarity", "budget": "paper"}
    # the children it evaluates (111 and 444: indices 0 and 63) are part of its identity since issue 18;
    # without them the config is the one it always was
    assert config.pop("archs") == [0, 63]
    assert config_hash(config) == "458a531c8a29fc6f"
