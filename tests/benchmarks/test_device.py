"""The GPU script of issue 21 (benchmarks/device/): which carried wheels get installed, the slimmed
NNI wheel, the issue's targets and the report, the harness's options for an offline machine, and
run_gpu.sh's own plumbing. No GPU, no peers, no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import import_scripts

ROOT = Path(__file__).resolve().parents[2]
DEVICE = ROOT / "benchmarks" / "device"


@pytest.fixture(scope="module")
def stages():
    # gpu_stages imports the harness lazily: it is imported here, while benchmarks/ is on the path
    return import_scripts([DEVICE, ROOT / "benchmarks"], "gpu_stages", "harness")


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_one_wheel_per_package_that_this_interpreter_can_install(stages, tmp_path):
    device, local = tmp_path / "wheels", tmp_path / "wheels-local"
    _touch(device, "websockets-17.4-cp312-cp312-manylinux1_x86_64.manylinux_2_28_x86_64.whl",
           "schema-0.7.8-py2.py3-none-any.whl", "nni-3.0-py3-none-manylinux1_x86_64.whl",
           "wcwidth-0.9.4-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", "README.txt.whl")
    _touch(local, "websockets-17.4-cp311-cp311-manylinux1_x86_64.whl", "schema-0.7.7-py3-none-any.whl",
           "pandas-3.1.1-cp311-cp311-manylinux_2_28_x86_64.whl")
    py312 = ["cp312-cp312-manylinux_2_28_x86_64", "cp312-abi3-manylinux_2_17_x86_64",
             "cp310-abi3-manylinux_2_17_x86_64", "py3-none-manylinux1_x86_64", "py3-none-any", "py2-none-any"]
    chosen, skipped = stages.pick_wheels([device, local], py312)
    assert sorted(p.name for p in chosen) == [
        "nni-3.0-py3-none-manylinux1_x86_64.whl", "schema-0.7.8-py2.py3-none-any.whl",
        "wcwidth-0.9.4-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        "websockets-17.4-cp312-cp312-manylinux1_x86_64.manylinux_2_28_x86_64.whl"]
    assert "pandas-3.1.1-cp311-cp311-manylinux_2_28_x86_64.whl (not for this interpreter)" in skipped
    assert "schema-0.7.7-py3-none-any.whl (another wheel of schema chosen)" in skipped
    assert "README.txt.whl (not a wheel file name)" in skipped
    py311 = ["cp311-cp311-manylinux_2_28_x86_64", "cp311-cp311-manylinux1_x86_64", "py3-none-any"]
    chosen, _ = stages.pick_wheels([device, local], py311)
    assert {p.name for p in chosen} >= {"websockets-17.4-cp311-cp311-manylinux1_x86_64.whl",
                                        "pandas-3.1.1-cp311-cp311-manylinux_2_28_x86_64.whl"}
    # the interpreter's own tags by default: a pure-python wheel is always installable
    assert "schema-0.7.8-py2.py3-none-any.whl" in {p.name for p in stages.pick_wheels([device])[0]}


def _fake_nni_wheel(path: Path) -> None:
    info = "nni-3.0.dist-info"
    files = {"nni/__init__.py": "VALUE = 42\n", "nni/nas/__init__.py": "", "nni_node/node": "x" * 5000,
             "nni_node/static/app.js": "y" * 3000, "nni_assets/a.txt": "z",
             f"{info}/METADATA": "Metadata-Version: 2.1\nName: nni\nVersion: 3.0\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
             f"{info}/top_level.txt": "nni\nnni_assets\nnni_node\n"}
    record = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
        z.writestr(f"{info}/RECORD", record)


def test_slimmed_wheel_installs_without_the_web_ui(tmp_path):
    wheel = tmp_path / "nni-3.0-py3-none-any.whl"
    _fake_nni_wheel(wheel)
    run = [sys.executable, str(DEVICE / "slim_wheel.py"), str(wheel), "nni_node", "nni_assets"]
    assert subprocess.run(run, capture_output=True, text=True).returncode == 0
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        record = z.read("nni-3.0.dist-info/RECORD").decode()
        top = z.read("nni-3.0.dist-info/top_level.txt").decode().split()
    assert not [n for n in names if n.startswith(("nni_node/", "nni_assets/"))]
    assert "nni/__init__.py" in names and "nni_node" not in record and top == ["nni"]
    before = wheel.stat().st_mtime_ns
    assert subprocess.run(run, capture_output=True, text=True).returncode == 0
    assert wheel.stat().st_mtime_ns == before  # nothing left to drop: the file is not rewritten
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                          "--disable-pip-version-check", "--target", str(site), str(wheel)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    assert (site / "nni" / "__init__.py").exists() and not (site / "nni_node").exists()
    bad = subprocess.run([sys.executable, str(DEVICE / "slim_wheel.py"), str(tmp_path / "x.zip"), "a"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "is not a wheel file" in bad.stderr


def _result(device: str, rows: list[dict], **config) -> dict:
    return {"date": "2026-11-26 12:00 UTC", "device": device,
            "machine": {"python": "3.12.3", "torch": "2.11.0", "platform": "Linux", "cores": 16,
                        "cpu": "x86", "gpu": "NVIDIA H100 80GB HBM3"},
            "threads": 16, "versions": {"wsnas": "0.1.0", "xautodl": "1.0.0"},
            "config": {"channels": 16, "cells_per_stage": 5, "eval_archs": 5, "eval_images": 10000,
                       "eval_batch": 500, "epoch_images": 5000, "epoch_batch": 256, "malloc": "as-shipped",
                       "precision": "fp32", **config},
            "memory": "CUDA", "timing": "median", "workloads": {r["workload"]: "w" for r in rows}, "rows": rows}


def _row(workload: str, tool: str, ms: float, peak: float = 100.0) -> dict:
    return {"workload": workload, "tool": tool, "status": "ok", "ms": ms, "unit": "ms/step", "images_per_s": 1e3 / ms,
            "peak_mb": peak, "params": 1000, "how": f"{tool} {workload}"}


def _work(tmp_path: Path, device: str = "cuda") -> Path:
    work = tmp_path / "work"
    (work / "stages").mkdir(parents=True)
    (work / "logs").mkdir()
    (work / "logs" / "setup.log").write_text("ok\n")
    fp32 = [_row("single_path_256", "wsnas", 10.0), _row("single_path_256", "xautodl", 29.7),
            _row("single_path_64", "wsnas", 8.0), _row("single_path_64", "xautodl", 21.1),
            _row("darts_64", "wsnas", 80.0, peak=900.0), _row("darts_64", "xautodl", 164.0, peak=1900.0)]
    fast = [_row("single_path_256", "wsnas", 9.0), _row("single_path_256", "xautodl", 30.0),
            _row("darts_64", "wsnas", 60.0, peak=1200.0), _row("darts_64", "xautodl", 170.0, peak=1900.0)]
    for i, row in enumerate(fp32):  # one file per workload, as run_gpu.sh writes them
        (work / f"harness-fp32-{row['workload']}-{i}.json").write_text(json.dumps(_result(device, [row])))
    (work / "harness-fast-all.json").write_text(json.dumps(_result(device, fast, channels_last=True,
                                                                   precision="bf16")))
    (work / "score-eval.json").write_text(json.dumps({
        "images": 10000, "cap_s_per_variant": 15, "how": "evaluate_archs", "variants": [
            {"flags": "(defaults)", "arch_batch": 16, "warmup_s": 2.0, "timed_archs": 800, "archs_per_s": 40.0,
             "projected_all_s": 390.6, "check": {"archs": 16, "max_abs_acc_diff": 0.0, "max_abs_loss_diff": 1e-7,
                                                 "max_rel_loss_diff": 5e-8}},
            {"flags": "--precision bf16 --channels-last", "error": "RuntimeError: boom"}]}))
    (work / "score-command.json").write_text(json.dumps({
        "command": "python3 -m wsnas supernet --archs all", "flags": "(defaults)", "children": 15625, "all": True,
        "images": 10000, "rc": 0, "timed_out": False, "wall_s": 250.0, "train_epoch_s": 3.0}))
    (work / "torchrun.json").write_text(json.dumps({
        "command": "torchrun --nproc_per_node 1 -m wsnas supernet", "ran": True, "backend": "nccl",
        "nccl_version": "2.27.5", "ranks": 1, "predictions": 16, "run_status": "done", "wall_s": 20.0}))
    (work / "stages" / "setup.json").write_text(json.dumps({"stage": "setup", "status": "ok", "rc": 0,
                                                            "seconds": 4.2, "limit_s": 60, "started": 1, "note": ""}))
    return work


def test_targets_met_or_not_from_the_measured_figures(stages, tmp_path):
    work = _work(tmp_path)
    results = {"fp32": stages.merge_results(sorted(work.glob("harness-fp32-*.json"))),
               "fast": stages.merge_results(sorted(work.glob("harness-fast-*.json")))}
    assert [r["workload"] for r in results["fp32"]["rows"]][:2] == ["single_path_64", "single_path_64"]
    goals = stages.targets(results, json.loads((work / "score-eval.json").read_text()),
                           json.loads((work / "score-command.json").read_text()),
                           json.loads((work / "torchrun.json").read_text()))
    status = {g["target"].split(":")[0].split(" at")[0]: g["status"] for g in goals}
    assert status["single-path step, batch 256"] == "met"  # 2.97x in fp32, 3.33x with the fast options
    assert "fp32: 2.97x; fast: 3.33x" in goals[0]["measured"]
    assert status["single-path step, batch 64"] == "met"  # 2.64x
    # fp32: 2.05x faster with 0.47x the memory; the fast run is faster but holds more
    assert status["DARTS step, batch 64"] == "met" and "memory 0.47x" in goals[2]["measured"]
    assert goals[3]["status"] == "met" and "250 s wall clock" in goals[3]["measured"]
    assert goals[4]["status"] == "met" and goals[5]["status"] == "met" and "NCCL 2.27.5" in goals[5]["measured"]

    slow = dict(json.loads((work / "score-command.json").read_text()), all=False, children=1024,
                projected_all_s=900.0)
    assert stages.targets(results, None, slow, None)[3]["status"] == "not met (projected)"
    gloo = {"ran": True, "backend": "gloo", "ranks": 1, "predictions": 4, "wall_s": 3.0}
    assert stages.targets({"fp32": None}, None, None, gloo)[-1]["status"] == "ran on gloo (not a GPU run)"
    assert [g["status"] for g in stages.targets({"fp32": None}, None, None, None)] == ["not measured"] * 6


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_report_writes_the_cuda_section_and_keeps_the_rest(stages, tmp_path, device):
    work = _work(tmp_path, device)
    md = tmp_path / "RESULTS.md"
    md.write_text("# Benchmark results\n\n<!-- BEGIN cpu -->\n## CPU\n\nkept\n<!-- END cpu -->\n\n"
                  "<!-- BEGIN cuda -->\n## CUDA\n\nNot measured yet.\n<!-- END cuda -->\n")
    out = tmp_path / "out"
    assert stages.main(["report", "--device", device, "--work", str(work), "--out", str(out),
                        "--command", "bash benchmarks/device/run_gpu.sh", "--results-md", str(md)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["RESULTS.md", "harness-fast.json", "harness-fp32.json",
                                                     "logs.tar.gz", "summary.json", "summary.md"]
    text = (out / "RESULTS.md").read_text()
    assert "kept" in text and "Not measured yet." not in text and text.count("<!-- BEGIN cuda -->") == 1
    assert "- command: `bash benchmarks/device/run_gpu.sh`" in text
    assert ("NVIDIA H100 80GB HBM3 (Linux)" in text) == (device == "cuda")  # the machine line names the GPU
    assert "### wsnas with `--channels-last --precision bf16`" in text and "| single_path_256 | wsnas |" in text
    assert "| --precision bf16 --channels-last | failed: RuntimeError: boom" in text
    assert "### Targets of issue 21" in text and "backend nccl (NCCL 2.27.5)" in text
    assert ("DRY RUN ON A CPU" in text) == (device == "cpu")
    assert md.read_text().count("Not measured yet.") == 1  # the repository's file is not touched
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stages"][0]["stage"] == "setup" and len(summary["targets"]) == 6
    assert "| setup | ok | 4.2 | 60 |" in (out / "summary.md").read_text()


def test_harness_on_an_offline_machine_runs_the_peers_with_a_given_python(tmp_path):
    """--peers-python: no environment made, a peer that does not import says why; --json,
    --results-md and --command put the results where the GPU script collects them."""
    out, md = tmp_path / "h.json", tmp_path / "R.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "harness.py"), "--device", "cpu", "--threads", "1",
         "--tools", "wsnas,xautodl", "--workloads", "single_path_64", "--warmup", "1", "--rounds", "1",
         "--block", "1", "--channels", "4", "--cells-per-stage", "1", "--peers-python", sys.executable,
         "--json", str(out), "--markdown", "--results-md", str(md), "--command", "bash run_gpu.sh --quick"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = {r["tool"]: r for r in result["rows"]}
    assert rows["wsnas"]["status"] == "ok" and result["config"]["channels"] == 4
    assert rows["xautodl"]["status"] == "unavailable" and "cannot import beside this torch" in rows["xautodl"]["reason"]
    assert result["command"] == "bash run_gpu.sh --quick"
    assert "- command: `bash run_gpu.sh --quick`" in md.read_text()
    assert not (tmp_path / ".peers-venv").exists()


def _run_gpu(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(DEVICE / "run_gpu.sh"), *args], capture_output=True, text=True, **kw)


def test_run_gpu_refuses_bad_options_in_one_line():
    for args, message in ((["--stages", "harness"], "unknown stage harness; accepted: torchrun, harness_fp32"),
                          (["--device", "tpu"], "--device tpu; accepted: cuda, cpu"),
                          (["--budget", "5m"], "--budget 5m; accepted: whole seconds"),
                          (["--command-limit", "-1"], "--command-limit -1; accepted: whole seconds"),
                          (["--frobnicate"], "unknown option --frobnicate")):
        proc = _run_gpu(*args)
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert _run_gpu("--help").returncode == 0


def test_run_gpu_setup_and_report_alone(tmp_path):
    """--stages none: the interpreter checked, nothing installed (no wheels), each stage recorded, the
    report written; a peer that does not import is recorded, not fatal."""
    out = tmp_path / "out"
    proc = _run_gpu("--device", "cpu", "--quick", "--stages", "none", "--python", sys.executable, "--out", str(out),
                    "--wheels", str(tmp_path / "no-wheels"), "--site", str(tmp_path / "site"),
                    env={**os.environ, "TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "setup: ok" in proc.stdout and "report: ok" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert [s["stage"] for s in summary["stages"]] == ["setup"]  # report's own record is written after it
    assert summary["setup"]["environment"]["cuda_available"] in (True, False)
    assert "wsnas" not in summary["setup"]["missing_after"]
    assert "DRY RUN ON A CPU" in (out / "RESULTS.md").read_text()
