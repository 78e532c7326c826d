"""examples/wsnas-plugin-demo, installed as a user installs it (pip, no network), driven through the
command line: its space and dataset are found by name through their entry points."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import wsnas
from wsnas.data import reload_described
from wsnas.spaces import space_from_description
from wsnas.store import Store

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "examples" / "wsnas-plugin-demo"


def run(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args} exited {done.returncode}: {done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """The package installed into a folder of its own (``--target``) with this Python's setuptools
    (``--no-build-isolation``: nothing fetched), and the environment that puts the folder and this
    wsnas on the path of a subprocess; importlib.metadata finds the entry points in the folder's
    ``.dist-info``."""
    import setuptools  # noqa: F401  - the build backend --no-build-isolation uses (the test extra)

    tmp = tmp_path_factory.mktemp("plugin")
    source = tmp / "source"  # pip builds in the source tree: a copy keeps the repository clean
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "WSNAS_"))}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", OMP_NUM_THREADS="1")
    run(["-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps", "--no-index",
         "--target", str(target), str(source)], env, tmp)
    assert (target / "wsnas_plugin_demo" / "space.py").is_file()
    env["PYTHONPATH"] = os.pathsep.join([str(target), str(Path(wsnas.__file__).resolve().parents[1])])
    work = tmp / "work"
    work.mkdir()
    return {"env": env, "cwd": work, "target": str(target)}


def wsnas_cli(installed: dict, *args: str) -> str:
    return run(["-m", "wsnas", *args], installed["env"], installed["cwd"]).stdout


def test_the_installed_space_is_listed(installed):
    out = wsnas_cli(installed, "spaces")
    # every option set, with how many choices offer it (the pooling choice has its own)
    assert "demo: 18 architectures, 3 choices: 2 x {conv1, conv3, conv5}; 1 x {avg, max}" in out.splitlines()


def test_a_supernet_on_the_installed_space_and_dataset_ranks_every_child(installed, monkeypatch):
    cwd = installed["cwd"]
    out = wsnas_cli(installed, "supernet", "--space", "demo", "--data", "shapes", "--data-option", "per_class=20",
                    "--epochs", "2", "--batch-size", "16", "--dense-last", "0", "--bn-mode", "batch",
                    "--threads", "1", "--no-progress", "--store", "demo.db", "--run-dir", "runs/demo")
    assert "18 children evaluated" in out and "best children with shared weights: " in out
    with Store(cwd / "demo.db", read_only=True) as store:
        config = store.get_run("supernet/uniform/0")["config"]
    assert config["space"] == {"space": "demo", "width": 8, "depth": 2}
    assert config["data"]["name"] == "shapes" and config["data"]["options"] == {"per_class": 20}
    assert config["data"]["sizes"] == {"train": 72, "valid": 8, "test": 80}
    assert config["data"]["class_names"] == ["square", "disc", "cross", "ring"]
    # the ranking, as a user takes it away: the predictions exported to CSV
    out = wsnas_cli(installed, "store", "--store", "demo.db", "export", "predictions", "--run", "supernet/uniform/0",
                    "--out", "predictions.csv")
    assert out.strip() == "wrote 36 rows of predictions to predictions.csv"
    with open(cwd / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted({r["checkpoint"] for r in rows}) == ["epoch:1", "epoch:2"]
    final = {r["arch"]: float(r["accuracy"]) for r in rows if r["checkpoint"] == "epoch:2"}
    kernels = ("conv1", "conv3", "conv5")
    assert sorted(final) == sorted(f"{a},{b},{p}" for a in kernels for b in kernels for p in ("avg", "max"))
    assert all(0.0 <= v <= 1.0 for v in final.values())
    # what a worker or `wsnas select` does with the run: the space and the data rebuilt by name from
    # the stored settings (the shapes drawn again from their seed, the same split)
    monkeypatch.syspath_prepend(installed["target"])
    space = space_from_description(config["space"])
    assert (space.name, len(space), space.index(space.parse("conv3,conv5,max"))) == ("demo", 18, 1 * 6 + 2 * 2 + 1)
    data = reload_described(config["data"])  # refuses data that differ from the description
    assert data.name == "shapes" and len(data.train) == 72
    # the report of the run directory, from the store alone: its best child by shared weights named
    out = wsnas_cli(installed, "report", "runs/demo")
    assert out.startswith(f"report: {Path('runs/demo/report.html')}")
    md = (cwd / "runs" / "demo" / "report.md").read_text()
    best = max(sorted(final), key=final.get)
    assert "supernet/uniform/0" in md and best in md
    assert (cwd / "runs" / "demo" / "report.html").read_text().count("<img") >= 1
