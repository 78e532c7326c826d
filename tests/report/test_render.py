"""Tests of the insights report (``wsnas.report``) on a tiny study built once per session.

The study is real (``run_insights``: ground truth, supernet instances, dense evaluation,
fine-tuning) but on narrow networks, a few hundred digits images and one or two epochs, so
it takes seconds. Its rankings are mostly noise; the tests check the report, not the science.
"""

from __future__ import annotations

import base64
import copy
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import IMG_TAG, build_tiny_study

from wsnas.analysis import insights as analysis_module
from wsnas.analysis.insights import analyse_insights
from wsnas.report import write_insights_report
from wsnas.report.figures import FIGURES, fmt, write_figures
from wsnas.report.render import expected_random_tnr, write_report
from wsnas.store import Store

# the figures the tiny study has data for: all but the strategy comparison's (its own test)
STUDY_FIGURES = sorted(set(FIGURES) - {"strategies.png"})

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROWS = ("different seeds", "different orders", "ground truth vs itself", "random ranking")
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> Path:
    return build_tiny_study(tmp_path_factory.mktemp("tiny-study"))


@pytest.fixture(scope="session")
def tiny_analysis(tiny_store) -> dict:
    with Store(tiny_store, create=False) as store:
        return analyse_insights(store, "insights")


@pytest.fixture(scope="session")
def report(tiny_store, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("report")
    with Store(tiny_store, create=False) as store:
        return write_insights_report(store, "insights", out)


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def test_writes_the_documents_and_every_figure(report):
    assert Path(report["html"]).name == "report.html" and Path(report["html"]).is_file()
    assert Path(report["md"]).name == "report.md" and Path(report["md"]).is_file()
    assert sorted(Path(p).name for p in report["figures"]) == STUDY_FIGURES
    assert all(Path(p).is_file() for p in report["figures"])


def test_sharing_sweep_table_and_findings(report, tiny_analysis):
    md = _read(report["md"])
    assert "## Table 3 of the paper (partial weight sharing), on this data" in md
    for label in ("full", "group:2:similarity", "group:4:random", "prefix:0", "prefix:4"):
        assert f"| {label} |" in md.replace("\\", ""), label
    assert "4x" in md and "(paper 0.708)" in md and "(paper 0.696)" in md
    rows = {r["label"]: r for r in tiny_analysis["sharing"]["rows"]}
    assert rows["group:4:similarity"]["compute"] == 4 and rows["prefix:0"]["compute"] == 1
    assert [m for m, _, _ in tiny_analysis["sharing"]["findings_input"]["similarity"]] == [1, 2, 4]
    claims = [f["claim"] for f in tiny_analysis["findings"]]
    assert any("reducing sharing" in c for c in claims) and any("prefix sharing" in c for c in claims)
    inter = tiny_analysis["interference"]
    assert len(inter["delta_matrix"]) == 64 and all(len(r) == 64 for r in inter["delta_matrix"])


def test_figures_are_valid_pngs(report):
    from matplotlib.image import imread

    for path in report["figures"]:
        raw = Path(path).read_bytes()
        assert raw[:8] == PNG_MAGIC and raw[12:16] == b"IHDR", path
        pixels = imread(path)  # decodes the whole image
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 200, path
        assert float(pixels.std()) > 0.01, f"{path} is blank"


def test_markdown_has_setup_findings_table_and_figures(report, tiny_analysis):
    md = _read(report["md"])
    setup, findings, table, figures = (md.index(h) for h in (
        "## Setup", "## Findings on this data", "## Tables 1 and 2", "## Figures"))
    assert setup < findings < table < figures  # findings first after the setup
    assert "digits" in md and "train 128, valid 64, test 64 images" in md
    for row in ROWS:
        assert re.search(rf"^\| {re.escape(row)}", md, re.M), row
    assert "(paper 0.5415)" in md and "(paper 0.393)" in md and "(paper 0.0382)" in md
    assert "(paper 0.457 ± 0.148)" in md and "(paper 0.712)" in md
    header = next(line for line in md.splitlines() if line.startswith("| experiment"))
    for column in ("S-Tau", "GT-Tau mean ± std", "T1R", "T3R", "GT-Tau-Mean-4 ± Std-4",
                   "consecutive-epoch tau"):
        assert column in header
    # every finding of the analysis is stated with a plain verdict
    assert tiny_analysis["findings"], "the tiny study should give findings"
    verdicts = {True: "**HOLDS:**", False: "**DOES NOT HOLD:**", None: "**UNDECIDED:**"}
    for f in tiny_analysis["findings"]:
        assert f"{verdicts[f['holds']]} {f['claim']}" in md.replace("\\", "")
    for name in STUDY_FIGURES:
        assert f"(figures/{name})" in md


def test_finding_lines_are_returned(report, tiny_analysis):
    assert len(report["findings"]) == len(tiny_analysis["findings"])
    for line, f in zip(report["findings"], tiny_analysis["findings"]):
        assert line.split(": ", 1)[0] in ("HOLDS", "DOES NOT HOLD", "UNDECIDED")
        assert f["claim"] in line and f["evidence"] in line


def test_html_is_self_contained(report):
    page = _read(report["html"])
    assert page.count(IMG_TAG) == len(report["figures"]) == len(STUDY_FIGURES)
    assert "http" not in page.lower()
    assert page.count("<script") == 1 and "<link" not in page and "@import" not in page
    assert re.findall(r'\bsrc="(?!data:image/png;base64,)', page) == []
    # the embedded images are exactly the PNG files
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    files = {Path(p).read_bytes() for p in report["figures"]}
    assert {base64.b64decode(e) for e in embedded} == files
    assert f'data-images-total="{len(STUDY_FIGURES)}"' in page


def test_html_escapes_every_text(tiny_analysis, tmp_path):
    a = copy.deepcopy(tiny_analysis)
    a["experiment"] = "<b>x</b> & 'y'"
    a["findings"] = [{"claim": "a <script>alert(1)</script> claim", "holds": True,
                      "evidence": "x < y & z > w"}]
    html_path, md_path = write_report(a, {}, tmp_path)
    page = html_path.read_text(encoding="utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt; &amp; &#39;y&#39;" in page
    assert "x &lt; y &amp; z &gt; w" in page
    assert page.count("<script") == 1
    assert "HOLDS:** a \\<script\\>alert(1)\\</script\\> claim" in md_path.read_text()


def _without_data(a: dict) -> dict:
    """The analysis of a study with one instance, no ceiling, no dense data, no fine-tuning."""
    a = copy.deepcopy(a)
    seeds = a["groups"]["seeds"]
    seeds["instances"] = seeds["instances"][:1]
    for inst in seeds["instances"]:
        inst.pop("dense", None)
    seeds["summary"] = analysis_module._group_summary(seeds["instances"])
    a["groups"] = {"seeds": seeds}
    a["truth"]["ceiling"] = None
    a["interference"] = None
    a["finetune"] = None
    a["sharing"] = None
    a["status"] = "running"
    a["findings"] = analysis_module.findings(a)
    return a


def test_missing_data_shows_a_dash_and_skips_figures(tiny_analysis, tmp_path):
    a = _without_data(tiny_analysis)
    figures_dir = tmp_path / "figures"
    write_figures(tiny_analysis, figures_dir)  # a complete earlier report in the same folder
    figures = write_figures(a, figures_dir)
    assert sorted(figures) == ["gt_tau_epochs.png", "scatter.png"]
    assert sorted(p.name for p in figures_dir.iterdir()) == sorted(figures)  # stale ones gone
    html_path, md_path = write_report(a, figures, tmp_path)
    md = md_path.read_text(encoding="utf-8")
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in md.splitlines()
            if line.startswith("| ") and not line.startswith("| experiment")}
    seeds = rows["different seeds"]
    assert seeds[1] == "1" and seeds[2] == "– (paper 0.5415)"  # one instance: no S-Tau
    assert seeds[6] == "– (paper 0.499 ± 0.032, k = 64)"  # no dense evaluation
    assert rows["different orders"][1] == "0"
    assert rows["different orders"][3] == "– (paper 0.463 ± 0.099)"
    gt = rows["ground truth vs itself (independent trainings)"]
    assert gt[2] == "– (paper 0.712)" and gt[4] == "– (paper 4.8)"
    assert "Not checked on this data" in md and "no complete fine-tuning run" in md
    assert "status 'running'" in md
    page = html_path.read_text(encoding="utf-8")
    assert page.count(IMG_TAG) == 2 and 'data-images-total="2"' in page


def test_nothing_to_draw_still_writes_a_report(tiny_analysis, tmp_path):
    a = _without_data(tiny_analysis)
    a["groups"] = {}
    a["findings"] = analysis_module.findings(a)
    figures = write_figures(a, tmp_path / "figures")
    assert figures == {}
    html_path, md_path = write_report(a, figures, tmp_path)
    assert "No figure could be drawn" in md_path.read_text(encoding="utf-8")
    assert "No finding could be checked" in html_path.read_text(encoding="utf-8")


def test_undefined_numbers_are_dashes(tiny_analysis, tmp_path):
    assert fmt(math.nan) == fmt(None) == fmt("x") == "–" and fmt(0.12345) == "0.123"
    a = copy.deepcopy(tiny_analysis)
    a["groups"]["seeds"]["summary"].update(gt_tau=math.nan, s_tau={"mean": math.nan, "n_pairs": 1})
    a["findings"] = [{"claim": "c", "holds": None, "evidence": "tau is nan"}]
    _, md_path = write_report(a, {}, tmp_path)
    md = md_path.read_text(encoding="utf-8")
    assert "nan |" not in md and "| – (paper 0.5415) | – (paper 0.457 ± 0.148) |" in md
    assert "**UNDECIDED:** c." in md


def test_report_is_reproducible(tiny_store, report, tmp_path):
    with Store(tiny_store, create=False) as store:
        again = write_insights_report(store, "insights", tmp_path)
    assert _read(again["md"]) == _read(report["md"])
    assert _read(again["html"]) == _read(report["html"])


def test_no_pyplot_figures_are_left_open(report):
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_expected_random_top_n_rank():
    assert expected_random_tnr(list(range(64)), 1) == pytest.approx(32.5)
    assert expected_random_tnr(list(range(64)), 3) == pytest.approx(65 / 4)
    assert expected_random_tnr([0.5, 0.5, 0.1], 1) == pytest.approx((1 + 1 + 3) / 3)
    assert expected_random_tnr([], 1) is None


def test_interference_ranks_ties_at_their_mean():
    # children tied at chance must not look "ranked high": they share the mean of their ranks
    ranks = analysis_module._best_first_ranks(np.array([0.1, 0.1, 0.1, 0.5]))
    assert ranks.tolist() == [3.0, 3.0, 3.0, 1.0]


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="/usr/bin/chromium is not installed (Debian package 'chromium')")
def test_html_renders_in_headless_chromium(report, tmp_path):
    page = Path(report["html"]).resolve()
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
           "--dump-dom", page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    n = len(STUDY_FIGURES)
    assert dom.count(IMG_TAG) == n
    body = re.search(r"<body[^>]*>", dom)
    assert body, dom[:500]
    assert f'data-images-loaded="{n}"' in body.group(0), body.group(0)
    assert "Uncaught" not in done.stderr, done.stderr[-2000:]

