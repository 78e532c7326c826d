"""The reports' templates (``wsnas.report.templating``): shipped as package data, escaping in HTML
and Markdown, a user's folder over the shipped templates, and one-line errors for bad templates."""

from __future__ import annotations

import base64
import re
from importlib import resources

import pytest

from wsnas.core.errors import WsnasError
from wsnas.report.render import Finding, Report, RunReport, to_html, to_markdown, write_run_report
from wsnas.report.templating import Templates, escape_markdown, shipped_templates

MARKUP = "<script>alert(1)</script>"
AMP = "a<b&c"
PIPE = "x|y"

#: Every template the package renders, by name (docs/report-templates.md documents each).
RENDERED = ["insights.html", "insights.md", "search_study.html", "search_study.md", "supernet.html", "supernet.md",
            "evolve.html", "evolve.md", "evolve_validation.html", "evolve_validation.md",
            "evolve_validation_table.md"]


def _report(value: str = MARKUP) -> Report:
    """An insights report whose every kind of text holds ``value``."""
    return Report(
        title=f"study {value}", setup=[("space", value)], warnings=[f"warning {value}"],
        findings=[Finding(f"claim {value}", True, f"evidence {value}"), Finding("c2", None, "e2")],
        not_checked=[f"not checked {value}"], header=["experiment", f"h {value}"],
        rows=[[(f"arch {value}", ""), (f"ours {value}", f"paper {value}")]], table_notes=[f"note {value}"],
        tables=[(f"extra {value}", ["a", "b"], [[(PIPE, ""), ("1", "–")]], [])])


def test_the_templates_ship_as_package_data():
    folder = resources.files("wsnas.report").joinpath("templates")
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    assert names == shipped_templates()
    for name in [*RENDERED, "base.html", "run.html", "run.md", "macros.html", "macros.md", "report.css", "images.js"]:
        assert name in names, name
        assert folder.joinpath(name).read_text(encoding="utf-8").strip(), name


def test_html_escapes_markup_in_every_value(png):
    page = to_html(_report(), {})
    assert MARKUP not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for text in ("study", "warning", "claim", "evidence", "not checked", "arch", "ours", "paper", "note", "extra"):
        assert f"{text} &lt;script&gt;" in page, text
    assert page.count("<script") == 1  # only the page's own
    page = to_html(_report(AMP), {})
    assert AMP not in page and "a&lt;b&amp;c" in page
    # attributes too: a figure's title is its alt text
    report = RunReport(title="t", setup=[], summary=[], tables=[], figures=[("f.png", 'say "hi" <b>', "")])
    page = Templates().render("run.html", report=report, title="t", figures={"f.png": png}, images=1,
                              analysis={})
    assert 'alt="say &#34;hi&#34; &lt;b&gt;"' in page


@pytest.fixture
def png(tmp_path):
    """A 1x1 PNG file."""
    path = tmp_path / "tiny.png"
    path.write_bytes(base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
                                      "awAAAABJRU5ErkJggg=="))
    return path


def test_markdown_escapes_values_and_keeps_tables_whole():
    md = to_markdown(_report())
    assert MARKUP not in md and "\\<script\\>alert(1)\\</script\\>" in md
    assert "| x\\|y | 1 |" in md  # a | in a value does not add a column
    for line in md.splitlines():
        if line.startswith("|"):
            assert len(re.findall(r"(?<!\\)\|", line)) in (3, 4), line  # 2 or 3 columns, as the header says
    assert escape_markdown("a_b*c") == "a\\_b\\*c"


def test_a_user_template_replaces_one_block_and_the_rest_stays_shipped(tmp_path):
    (tmp_path / "insights.html").write_text(
        '{% extends "wsnas/insights.html" %}{% block findings %}<p class="mine">{{ report.findings|length }} '
        "findings, first: {{ report.findings[0].claim }}</p>{% endblock %}")
    (tmp_path / "report.css").write_text("body { color: rebeccapurple; }\n")
    page = to_html(_report(), {}, templates=tmp_path)
    assert '<p class="mine">2 findings, first: claim &lt;script&gt;' in page  # still escaped
    assert "Findings on this data" not in page and "Tables 1 and 2" in page  # only that block replaced
    assert "rebeccapurple" in page and "border-collapse" not in page  # the user's CSS instead of the shipped
    md = to_markdown(_report(), templates=tmp_path)
    assert "## Findings on this data" in md  # no insights.md in the folder: the shipped one
    assert "rebeccapurple" in Templates(tmp_path).render("run.html", report=RunReport("t", [], [], []), title="t",
                                                          figures={}, images=0, analysis={})


def test_a_run_report_is_rendered_from_the_user_markdown(tmp_path):
    (tmp_path / "supernet.md").write_text("# {{ report.title|md }} ({{ analysis.children }} children)\n")
    out = tmp_path / "out"
    paths = write_run_report(RunReport("run a_b", [], ["s"], []), {}, out, "supernet", templates=tmp_path,
                             analysis={"children": 64})
    assert (out / "report.md").read_text() == "# run a\\_b (64 children)\n"
    assert "run a_b" in (out / "report.html").read_text() and paths["summary"] == ["s"]


@pytest.mark.parametrize("name, text, fragment", [
    ("insights.md", "{% for x in %}\n", "insights.md, line 1: "),
    ("insights.html", "ok\n{% if %}", "insights.html, line 2: "),
    ("helper.md", "{{ x ", "helper.md, line 1: "),  # any template of the folder, used or not
])
def test_a_template_with_a_syntax_error_is_one_line_naming_it(tmp_path, name, text, fragment):
    (tmp_path / name).write_text(text)
    with pytest.raises(WsnasError) as err:
        Templates(tmp_path)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / name) in message and fragment in message


def test_errors_while_rendering_are_one_line_naming_the_file(tmp_path):
    (tmp_path / "insights.md").write_text("line one\n{{ report.no_such_field }}\n")
    with pytest.raises(WsnasError, match=r"insights\.md, line 2: .*no_such_field") as err:
        to_markdown(_report(), templates=tmp_path)
    assert "\n" not in str(err.value)
    (tmp_path / "insights.md").write_text('{% include "missing.md" %}')
    with pytest.raises(WsnasError, match="template 'missing.md' .* is neither in .* nor shipped; shipped: base.html"):
        to_markdown(_report(), templates=tmp_path)


def test_a_missing_template_folder_is_one_line(tmp_path):
    with pytest.raises(WsnasError, match=r"--template '.*nope' is not a directory; accepted: a directory of "
                                         r"templates named as the shipped ones \(base.html, "):
        Templates(tmp_path / "nope")
    (tmp_path / "file").write_text("")
    with pytest.raises(WsnasError, match="is not a directory"):
        Templates(tmp_path / "file")
