"""NAS-Bench-201 / NATS-Bench readers on tiny files written in the official structures."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

from wsnas.cli import main
from wsnas.core.errors import WsnasError
from wsnas.groundtruth.benchmarks.nb201 import (
    BENCHMARK_COLUMNS,
    convert_benchmark,
    load_benchmark_truth,
    query_benchmark,
    read_benchmark_table,
    read_nats_tss_dir,
    read_nb201_pth,
)
from wsnas.groundtruth.truth import load_truth

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def arch_string(i: int) -> str:
    e = [OPS[(i // 5**k) % 5] for k in range(6)]
    return f"|{e[0]}~0|+|{e[1]}~0|{e[2]}~1|+|{e[3]}~0|{e[4]}~1|{e[5]}~2|"


META_ARCHS = [arch_string(i) for i in range(8)]
EVAL_SETS = {"cifar10-valid": ["x-valid", "ori-test"], "cifar10": ["ori-test"],
             "cifar100": ["ori-test", "x-valid", "x-test"],
             "ImageNet16-120": ["ori-test", "x-valid", "x-test"]}
SET_OFFSET = {"x-valid": 0.0, "ori-test": 1.0, "x-test": 2.0}
DATA_OFFSET = {"cifar10-valid": 80.0, "cifar10": 85.0, "cifar100": 60.0, "ImageNet16-120": 30.0}


def final_acc(index: int, dataset: str, seed: int, set_name: str, epochs: int) -> float:
    """The final accuracy (%) the fake files hold for one trial."""
    return DATA_OFFSET[dataset] + index + SET_OFFSET[set_name] + (seed % 10) * 0.5 - (
        10.0 if epochs == 12 else 0.0)


def results_count(index: int, dataset: str, seed: int, epochs: int) -> dict:
    """A ResultsCount state dict as the official files hold it."""
    accs, losses, times = {}, {}, {}
    for name in EVAL_SETS[dataset]:
        for e in (0, epochs - 1):  # the files keep some epochs only
            accs[f"{name}@{e}"] = (final_acc(index, dataset, seed, name, epochs) if e == epochs - 1
                                   else 10.0)
            losses[f"{name}@{e}"] = 1.0
            times[f"{name}@{e}"] = 0.5
    params = 0.1 + index / 100 + (0.01 if dataset == "cifar100" else 0.0)
    return {
        "name": dataset, "net_state_dict": None,
        "train_acc1es": {e: 50.0 for e in range(epochs)}, "train_acc5es": None,
        "train_losses": {e: 1.5 for e in range(epochs)},
        "train_times": OrderedDict((e, 7.2) for e in range(epochs)),
        "arch_config": {"channel": 16, "num_cells": 5, "arch_str": META_ARCHS[index],
                        "class_num": 10},
        "params": np.float64(params), "flop": 15.0 + index, "seed": f"{seed:04d}",
        "epochs": epochs,
        "latency": [np.float64(0.01 + index / 1000), np.float64(0.03 + index / 1000)],
        "eval_names": list(EVAL_SETS[dataset]), "eval_acc1es": accs, "eval_times": times,
        "eval_losses": losses,
    }


SEEDS = {12: {"cifar10-valid": [111, 777], "cifar10": [111], "cifar100": [111],
              "ImageNet16-120": [111]},
         200: {"cifar10-valid": [777, 888, 999], "cifar10": [777, 888], "cifar100": [777],
               "ImageNet16-120": [777, 888, 999]}}


def arch_results(index: int, epochs: int) -> dict:
    """An ArchResults state dict."""
    seeds = SEEDS[epochs]
    return {"arch_index": index, "arch_str": META_ARCHS[index],
            "all_results": {(d, s): results_count(index, d, s, epochs)
                            for d, ss in seeds.items() for s in ss},
            "dataset_seed": {d: list(ss) for d, ss in seeds.items()}, "clear_net_done": True}


EVALUATED = [0, 2, 3, 5, 7]


def nb201_object() -> dict:
    return {"meta_archs": list(META_ARCHS),
            "arch2infos": {i: {"less": arch_results(i, 12), "full": arch_results(i, 200)}
                           for i in EVALUATED},
            "evaluated_indexes": set(EVALUATED)}


@pytest.fixture(scope="module")
def pth(tmp_path_factory):
    path = tmp_path_factory.mktemp("nb201") / "NAS-Bench-201-tiny.pth"
    torch.save(nb201_object(), path)
    return path


def write_pbz2(obj, path):
    with bz2.BZ2File(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=4)


@pytest.fixture(scope="module")
def nats_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("nats") / "NATS-tss-v1_0-3ffb9-simple"
    root.mkdir()
    write_pbz2({"meta_archs": list(META_ARCHS), "total_archs": len(META_ARCHS),
                "arch2infos": None, "evaluated_indexes": set()}, root / "meta.pickle.pbz2")
    for i in EVALUATED[:3]:
        name = f"{i:06d}.pickle.pbz2" if i != 3 else f"{i}.pickle.pbz2"
        write_pbz2(OrderedDict([("12", arch_results(i, 12)), ("200", arch_results(i, 200))]),
                   root / name)
    return root


def expected(index: int, dataset: str, epochs: int) -> dict:
    seeds = SEEDS[epochs][dataset]
    valid, test = {"cifar10-valid": ("x-valid", "ori-test"), "cifar10": (None, "ori-test"),
                   "cifar100": ("x-valid", "x-test"),
                   "ImageNet16-120": ("x-valid", "x-test")}[dataset]

    def mean(set_name):
        if set_name is None:
            return None
        return sum(final_acc(index, dataset, s, set_name, epochs) for s in seeds) / len(seeds) / 100

    return {"valid_acc": mean(valid), "test_acc": mean(test), "seeds": len(seeds),
            "params_m": 0.1 + index / 100 + (0.01 if dataset == "cifar100" else 0.0),
            "flops_m": 15.0 + index, "latency": 0.02 + index / 1000}


def check_records(records, indices):
    assert [r.index for r in records] == sorted(r.index for r in records)
    assert {r.index for r in records} == set(indices)
    assert len(records) == len(indices) * 8
    for r in records:
        assert r.arch == META_ARCHS[r.index]
        want = expected(r.index, r.dataset, r.hp)
        if want["valid_acc"] is None:
            assert np.isnan(r.valid_acc)
        else:
            assert r.valid_acc == pytest.approx(want["valid_acc"])
        for key in ("test_acc", "params_m", "flops_m", "latency"):
            assert getattr(r, key) == pytest.approx(want[key]), (r, key)
        assert r.seeds == want["seeds"]


def test_torch_save_writes_a_zip_with_data_pkl(pth):
    assert zipfile.is_zipfile(pth)
    assert any(n.endswith("/data.pkl") for n in zipfile.ZipFile(pth).namelist())


def test_read_pth_by_hand(pth):
    records = list(read_nb201_pth(pth))
    check_records(records, EVALUATED)
    rows = {(r.index, r.dataset, r.hp): r for r in records}
    # arch 2, cifar10-valid, 200 epochs: x-valid of seeds 777/888/999 is 82+3.5, 82+4, 82+4.5
    r = rows[(2, "cifar10-valid", 200)]
    assert r.valid_acc == pytest.approx(0.86)
    assert r.test_acc == pytest.approx(0.87)  # ori-test: one point above x-valid
    assert r.seeds == 3
    # 12 epochs: seeds 111/777 -> 82+0.5-10, 82+3.5-10 -> 74.0 %
    assert rows[(2, "cifar10-valid", 12)].valid_acc == pytest.approx(0.74)
    # cifar10 has no valid split; its test is ori-test (seeds 777, 888: 88+3.5, 88+4)
    c10 = rows[(2, "cifar10", 200)]
    assert np.isnan(c10.valid_acc) and c10.test_acc == pytest.approx(0.9175)
    # cifar100 test is x-test (62 + 2 + 3.5), not ori-test
    assert rows[(2, "cifar100", 200)].test_acc == pytest.approx(0.675)
    assert rows[(2, "cifar100", 200)].params_m == pytest.approx(0.13)
    assert rows[(2, "ImageNet16-120", 12)].latency == pytest.approx(0.022)
    assert {r.hp for r in records} == {12, 200}


def test_legacy_and_plain_pickle_pth(tmp_path, pth):
    want = list(read_nb201_pth(pth))
    legacy = tmp_path / "legacy.pth"
    torch.save(nb201_object(), legacy, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(legacy)
    plain = tmp_path / "plain.pth"
    plain.write_bytes(pickle.dumps(nb201_object(), protocol=2))
    assert _same(read_nb201_pth(legacy), want)
    assert _same(read_nb201_pth(plain), want)


def _same(records, want) -> bool:
    got = [tuple(np.nan_to_num(v, nan=-1.0) if isinstance(v, float) else v for v in vars(r).values())
           for r in records]
    exp = [tuple(np.nan_to_num(v, nan=-1.0) if isinstance(v, float) else v for v in vars(r).values())
           for r in want]
    return got == exp


def test_read_nats_dir(nats_dir, pth):
    records = list(read_nats_tss_dir(nats_dir))
    check_records(records, EVALUATED[:3])
    from_pth = [r for r in read_nb201_pth(pth) if r.index in EVALUATED[:3]]
    assert _same(records, from_pth)


def test_convert_and_load_truth(tmp_path, pth, nats_dir):
    out = tmp_path / "nb201.csv.gz"
    summary = convert_benchmark(pth, out)
    assert (summary.archs, summary.rows) == (5, 40)
    assert summary.hps == {12: 20, 200: 20}
    with gzip.open(out, "rt") as fh:
        assert fh.readline().strip() == ",".join(BENCHMARK_COLUMNS)
    table = read_benchmark_table(out)
    assert _same(table, list(read_nb201_pth(pth)))

    truth = load_truth(f"nb201-cifar10:{out}")
    assert truth.space == "nb201" and truth.dataset == "cifar10"
    assert truth.indices == EVALUATED
    assert truth.archs == [META_ARCHS[i] for i in EVALUATED]
    assert truth.accuracy[1] == pytest.approx(0.9175)
    t12 = load_truth(f"nb201-cifar100@12:{out}", metric="valid_acc")
    assert t12.accuracy[0] == pytest.approx((60 + 0 + 0.5 - 10) / 100)
    same = load_benchmark_truth(out, "ImageNet16-120", hp=200)
    assert same.accuracy[0] == pytest.approx((30 + 2 + 4) / 100)
    with pytest.raises(WsnasError, match="no valid_acc for cifar10"):
        load_truth(f"nb201-cifar10:{out}", metric="valid_acc")
    with pytest.raises(WsnasError, match="not in the benchmark table"):
        load_truth(f"nb201-mnist:{out}")

    plain = tmp_path / "nats.csv"
    assert convert_benchmark(nats_dir, plain).archs == 3
    assert plain.read_text().startswith("index,arch,dataset,hp")


def test_cli_convert_and_query(tmp_path, pth, capsys):
    out = tmp_path / "t.csv.gz"
    assert main(["benchmark", "convert", str(pth), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "40 rows for 5 architectures" in text and "200 epochs: 20 rows" in text

    assert main(["benchmark", "query", str(out), "--arch", "2", "--dataset", "cifar10"]) == 0
    text = capsys.readouterr().out
    assert META_ARCHS[2] in text and "0.9175" in text and "cifar100" not in text

    assert main(["benchmark", "query", str(out), "--arch", META_ARCHS[3], "--hp", "0",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8 and {r["hp"] for r in rows} == {12, 200}
    assert rows[1]["dataset"] == "cifar10" and rows[1]["valid_acc"] is None

    assert main(["benchmark", "query", str(out), "--arch", "1"]) == 2  # not evaluated
    assert "not in" in capsys.readouterr().err


def test_query_one_architecture(tmp_path, pth):
    table = tmp_path / "t.csv"
    convert_benchmark(pth, table)
    rows = query_benchmark(table, "2", hp=0)
    assert {r.arch for r in rows} == {META_ARCHS[2]} and {r.hp for r in rows} == {12, 200}
    assert query_benchmark(table, f" {META_ARCHS[2]} ", hp=0) == rows  # by string, as by index
    picked = query_benchmark(table, "2", dataset=" CIFAR100 ")
    assert [(r.dataset, r.hp) for r in picked] == [("cifar100", 200)]
    with pytest.raises(WsnasError, match=f"architecture '1' is not in '{table}'"):
        query_benchmark(table, "1")  # not evaluated
    with pytest.raises(WsnasError, match="dataset 'mnist' is not in .* for this architecture \\(it has "
                                         "ImageNet16-120, cifar10, cifar10-valid, cifar100\\)"):
        query_benchmark(table, "2", dataset="mnist")
    with pytest.raises(WsnasError, match="no 50-epoch results .* \\(it has 12, 200 epochs; --hp 0 shows all\\)"):
        query_benchmark(table, "2", hp=50)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_disallowed_global_is_refused(tmp_path, nats_dir):
    obj = nb201_object()
    obj["arch2infos"][0]["full"]["clear_net_done"] = Evil()
    bad = tmp_path / "evil.pth"
    torch.save(obj, bad)
    with pytest.raises(WsnasError) as info:
        list(read_nb201_pth(bad))
    msg = str(info.value)
    assert "system" in msg and str(bad) in msg and "\n" not in msg

    bad_dir = tmp_path / "evil-nats"
    bad_dir.mkdir()
    for f in nats_dir.iterdir():
        (bad_dir / f.name).write_bytes(f.read_bytes())
    write_pbz2({"12": Evil()}, bad_dir / "000005.pickle.pbz2")
    with pytest.raises(WsnasError, match="system") as info:
        list(read_nats_tss_dir(bad_dir))
    assert "000005.pickle.pbz2" in str(info.value)
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(WsnasError):
        convert_benchmark(bad_dir, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("kind", ["no-archs", "no-results", "nats-meta-only"])
def test_convert_refuses_a_source_without_results(tmp_path, nats_dir, capsys, kind):
    if kind == "nats-meta-only":
        source = tmp_path / "NATS-empty"
        source.mkdir()
        (source / "meta.pickle.pbz2").write_bytes((nats_dir / "meta.pickle.pbz2").read_bytes())
    else:
        source = tmp_path / "empty.pth"
        state = {**arch_results(0, 200), "all_results": {}, "dataset_seed": {}}
        infos = {} if kind == "no-archs" else {0: {"full": state}}
        torch.save({"meta_archs": list(META_ARCHS), "arch2infos": infos}, source)
    out = tmp_path / "t.csv"
    assert main(["benchmark", "convert", str(source), "--out", str(out), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert str(source) in captured.err and "no benchmark results" in captured.err
    assert not out.exists() and not (tmp_path / "t.csv.tmp").exists()


def test_missing_and_corrupt_inputs(tmp_path, pth, nats_dir):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x80\x02not really a pickle at all")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(pth.read_bytes()[:3000])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "meta.pickle.pbz2").write_bytes((nats_dir / "meta.pickle.pbz2").read_bytes())
    (broken / "000001.pickle.pbz2").write_bytes(b"BZh91AY&SY this is not bzip2 data")
    no_meta = tmp_path / "no_meta"
    no_meta.mkdir()
    not_bench = tmp_path / "other.pth"
    torch.save({"state_dict": 1}, not_bench)
    weights = tmp_path / "weights.pth"
    torch.save({"meta_archs": [], "w": torch.zeros(2)}, weights)
    cases = [
        (lambda: list(read_nb201_pth(tmp_path / "nope.pth")), "not found"),
        (lambda: list(read_nats_tss_dir(tmp_path / "nope")), "not found"),
        (lambda: list(read_nats_tss_dir(pth)), "not a directory"),
        (lambda: list(read_nb201_pth(junk)), "junk.pth"),
        (lambda: list(read_nb201_pth(truncated)), "damaged zip"),
        (lambda: list(read_nats_tss_dir(broken)), "000001.pickle.pbz2"),
        (lambda: list(read_nats_tss_dir(no_meta)), "meta.pickle.pbz2"),
        (lambda: list(read_nb201_pth(not_bench)), "meta_archs"),
        (lambda: list(read_nb201_pth(weights)), "contains tensors"),
        (lambda: load_benchmark_truth(tmp_path / "none.csv.gz", "cifar10"), "not found"),
        (lambda: load_truth(f"nb201-cifar10:{junk}"), "benchmark convert"),
    ]
    for case, pattern in cases:
        with pytest.raises(WsnasError, match=pattern) as info:
            case()
        assert "\n" not in str(info.value)
    assert main(["benchmark", "convert", str(tmp_path / "nope.pth"), "--out",
                 str(tmp_path / "x.csv")]) == 2
