"""The benchmark harness (benchmarks/): the wsnas side in-process on tiny sizes, the table and JSON
shape, and a missing peer reported unavailable with its reason. No peers' environment, no network."""

from __future__ import annotations

import json

import pytest
from conftest import BENCHMARKS as BENCH
from conftest import import_scripts


@pytest.fixture(scope="module")
def harness():
    return import_scripts([BENCH], "harness")


def _tiny(harness, **kw):
    from benchlib import BenchConfig

    cfg = BenchConfig(threads=1, channels=4, cells_per_stage=1, warmup=1, rounds=2, block=1,
                      eval_archs=2, eval_images=16, eval_batch=8, epoch_images=60, epoch_batch=16)
    for key, value in kw.items():
        setattr(cfg, key, value)
    return cfg


def test_wsnas_rows_and_an_unavailable_peer(harness, tmp_path):
    cfg = _tiny(harness)
    result = harness.run_benchmark(cfg, tools=("wsnas", "xautodl"), workloads=("single_path_64", "eval"),
                                   peers_python=None, peer_reasons={"xautodl": "cannot import beside torch: boom"},
                                   inprocess=True, log=lambda *_: None)
    rows = {(r["workload"], r["tool"]): r for r in result["rows"]}
    assert set(rows) == {("single_path_64", "wsnas"), ("single_path_64", "xautodl"),
                         ("eval", "wsnas"), ("eval", "xautodl")}
    for workload in ("single_path_64", "eval"):
        ok = rows[(workload, "wsnas")]
        assert ok["status"] == "ok"
        assert ok["ms"] > 0 and ok["images_per_s"] > 0 and ok["samples"] == 2
        assert ok["params"] > 0 and ok["peak_mb"] >= 0 and ok["memory_kind"] == "cpu_peak_rss_delta"
        assert set(ok["cpu_per_unit"]) == {"user_s", "sys_s", "minor_faults"}
        missing = rows[(workload, "xautodl")]
        assert missing["status"] == "unavailable"
        assert missing["reason"] == "cannot import beside torch: boom"
        assert "ratio" not in missing
    assert rows[("single_path_64", "wsnas")]["unit"] == "ms/step"
    assert rows[("eval", "wsnas")]["unit"] == "ms/arch/10k img"
    assert len(result["archs"]) == 2 and result["device"] == "cpu" and result["threads"] == 1
    assert {"cpu", "cores", "python", "torch"} <= set(result["machine"])

    table = harness.format_table(result)
    assert "wsnas speed-up" in table.splitlines()[0]
    assert "unavailable: cannot import beside torch: boom" in table

    path = harness.write_json(result, tmp_path / "results")
    assert path.name.endswith("-cpu.json")
    assert json.loads(path.read_text())["rows"] == json.loads(json.dumps(result["rows"]))

    md = tmp_path / "RESULTS.md"
    harness.write_markdown(result, md, note="machine shared")
    text = md.read_text()
    assert "## CPU" in text and "machine shared" in text and "| single_path_64 | wsnas |" in text
    assert "## CUDA" in text and "Not measured yet" in text  # the GPU section says so, ready for a run
    harness.write_markdown(result, md)  # rewriting replaces the CPU section, keeps the rest
    again = md.read_text()
    assert again.count("## CPU") == 1 and again.count("## CUDA") == 1 and "machine shared" not in again


def test_end_to_end_epoch_reads_cifar_files_and_peers_say_why_not(harness):
    cfg = _tiny(harness, rounds=1)
    result = harness.run_benchmark(cfg, tools=("wsnas", "nni"), workloads=("epoch",), peers_python=None,
                                   inprocess=True, log=lambda *_: None)
    rows = {r["tool"]: r for r in result["rows"]}
    assert rows["wsnas"]["status"] == "ok" and rows["wsnas"]["unit"] == "ms/epoch"
    assert rows["wsnas"]["images_per_s"] > 0
    assert rows["nni"]["status"] == "unavailable" and rows["nni"]["reason"] == "peers environment not set up"
    assert cfg.data_dir is None  # the temporary CIFAR-10 folder is gone


def test_ratio_is_the_peer_time_over_wsnas(harness):
    rows = [{"workload": "single_path_64", "tool": "wsnas", "status": "ok", "ms": 10.0},
            {"workload": "single_path_64", "tool": "xautodl", "status": "ok", "ms": 15.0},
            {"workload": "single_path_64", "tool": "nni", "status": "unavailable", "reason": "x"}]
    harness.add_ratios(rows)
    assert rows[1]["ratio"] == pytest.approx(1.5) and "ratio" not in rows[0] and "ratio" not in rows[2]


def test_written_cifar_files_read_back_with_wsnas(harness, tmp_path):
    from wsnas.data import read_cifar_batch

    folder = harness.write_cifar10(tmp_path, 23, 7)
    images, labels = read_cifar_batch(folder / "data_batch_1")
    assert images.shape == (5, 3, 32, 32) and labels.shape == (5,)
    assert read_cifar_batch(folder / "test_batch")[0].shape[0] == 7


def test_bad_tool_is_a_one_line_error(harness, capsys):
    assert harness.main(["--tools", "wsnas,autodl"]) == 2
    assert "unknown tool autodl; accepted: wsnas, xautodl, nni" in capsys.readouterr().err


def test_allocator_modes_set_each_workers_environment(harness):
    from benchlib import BenchConfig, tune_allocator_from_source, worker_env

    def env(tool, **kw):
        return {k: v for k, v in worker_env(BenchConfig(**kw), tool).items() if k != "WSNAS_CHANNELS_LAST"}

    assert env("wsnas") == {} and env("xautodl") == {}
    assert env("wsnas", malloc="system") == {"WSNAS_MALLOC": "system"}
    assert env("nni", malloc="tuned") == {"BENCH_TUNE_MALLOC": "1"} and env("wsnas", malloc="tuned") == {}
    with pytest.raises(ValueError, match="unknown allocator mode 'jemalloc'; accepted: as-shipped, system, tuned"):
        env("wsnas", malloc="jemalloc")
    cl = BenchConfig(channels_last=True)
    assert worker_env(cl, "wsnas")["WSNAS_CHANNELS_LAST"] == "1" and worker_env(cl, "nni")["WSNAS_CHANNELS_LAST"] == "0"
    assert isinstance(tune_allocator_from_source(), bool)  # loads without the wsnas package's imports
    cfg = harness.config_from_args(harness.parse_args(["--malloc", "system", "--channels-last"]))
    assert cfg.malloc == "system" and cfg.channels_last
