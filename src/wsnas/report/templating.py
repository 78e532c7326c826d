"""The reports' documents rendered from Jinja2 templates (``report.html`` and ``report.md``).

The templates ship with the package in ``wsnas/report/templates/`` (package data, found through
:mod:`importlib.resources`); ``docs/report-templates.md`` lists each one and the variables it
receives. A user's folder of templates (``wsnas report --template DIR``) comes first: a file
there replaces the shipped one of the same name, and everything it does not replace is the
shipped one (a Jinja2 ``ChoiceLoader``), so one block of one page can be changed by a file that
extends the shipped page (``{% extends "wsnas/insights.html" %}``: the ``wsnas/`` prefix always
names a shipped template).

HTML templates (``*.html``) escape every value (autoescaping; ``|safe`` opts out). Markdown
templates (``*.md``) are not autoescaped; their values go through the ``md`` filter
(:func:`escape_markdown`), which escapes what Markdown would read as formatting or table syntax,
so a ``|`` in a value cannot break a table. Other filters: ``data_uri`` (a PNG file as a
``data:`` URI, so the HTML needs nothing outside itself) and ``fmt`` (a number with fixed
decimals, an en dash when missing). An undefined variable is an error, not an empty string.

Every problem with a user's templates is one line (:class:`wsnas.core.errors.WsnasError`) naming
the file: a missing folder, a syntax error (found before any work: every template of the folder
is compiled when :class:`Templates` is made), an error while rendering.

Example::

    from wsnas.report.templating import Templates

    page = Templates("my-templates").render("insights.html", report=report, figures={}, images=0)
"""

from __future__ import annotations

import base64
import functools
from importlib import resources
from pathlib import Path

import jinja2

from wsnas.core.errors import WsnasError
from wsnas.report.figures import fmt

__all__ = ["SHIPPED_PREFIX", "TEMPLATE_FOLDER", "Templates", "escape_markdown", "png_data_uri", "shipped_templates",
           "templates_from"]

#: Folder of the shipped templates inside the package ``wsnas.report``.
TEMPLATE_FOLDER = "templates"
#: A template name with this prefix is always the shipped one (to extend it from a user's file of the same name).
SHIPPED_PREFIX = "wsnas/"
_SUFFIXES = (".html", ".md")


def escape_markdown(text: object) -> str:
    """Escape the characters Markdown would read as formatting or table syntax."""
    text = str(text)
    for ch in "\\`*_[]<>|":
        text = text.replace(ch, "\\" + ch)
    return text


def png_data_uri(path: str | Path) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def shipped_templates() -> list[str]:
    """The names of the templates shipped with the package, sorted."""
    folder = resources.files("wsnas.report").joinpath(TEMPLATE_FOLDER)
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


class Templates:
    """The templates of the reports: a user's folder (optional) over the shipped ones."""

    def __init__(self, template_dir: str | Path | None = None):
        self.template_dir = None if template_dir is None else Path(template_dir)
        shipped = jinja2.PackageLoader("wsnas.report", TEMPLATE_FOLDER)
        loaders: list[jinja2.BaseLoader] = [jinja2.PrefixLoader({SHIPPED_PREFIX.rstrip("/"): shipped})]
        if self.template_dir is not None:
            if not self.template_dir.is_dir():
                raise WsnasError(f"--template {str(self.template_dir)!r} is not a directory; accepted: a directory "
                                 f"of templates named as the shipped ones ({', '.join(shipped_templates())})")
            loaders.insert(0, jinja2.FileSystemLoader(self.template_dir))
        loaders.append(shipped)
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False,
                                                default=False),
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
        self.env.filters.update(md=escape_markdown, data_uri=png_data_uri, fmt=fmt)
        if self.template_dir is not None:  # a syntax error in the user's templates: now, before any work
            for path in sorted(self.template_dir.rglob("*")):
                if path.is_file() and path.suffix in _SUFFIXES:
                    self._get(path.relative_to(self.template_dir).as_posix())

    def _where(self, name: str) -> str:
        """The file a template name stands for, as the user sees it."""
        if self.template_dir is not None and not name.startswith(SHIPPED_PREFIX) \
                and (self.template_dir / name).is_file():
            return str(self.template_dir / name)
        return f"the shipped template {name.removeprefix(SHIPPED_PREFIX)}"

    def _error(self, exc: jinja2.TemplateError, name: str, template: jinja2.Template | None = None) -> WsnasError:
        """One line for a template's error, naming its file."""
        if isinstance(exc, jinja2.TemplateSyntaxError):
            return WsnasError(f"template {exc.filename or self._where(exc.name or name)}, line {exc.lineno}: "
                              f"{_one_line(exc.message)}")
        if isinstance(exc, jinja2.TemplateNotFound):
            return WsnasError(f"template {exc.name!r} (needed by {self._where(name)}) is neither in "
                              f"{str(self.template_dir)!r} nor shipped; shipped: {', '.join(shipped_templates())}")
        where = _failing_file(exc, template) if template is not None else self._where(name)
        return WsnasError(f"template {where}: {_one_line(exc.message or exc)}")

    def _get(self, name: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateError as exc:
            raise self._error(exc, name) from None

    def render(self, name: str, **variables: object) -> str:
        """Template ``name`` rendered with ``variables`` (see docs/report-templates.md)."""
        template = self._get(name)
        try:
            return template.render(**variables)
        except jinja2.TemplateError as exc:
            raise self._error(exc, name, template) from None


def _failing_file(exc: BaseException, template: jinja2.Template) -> str:
    """``FILE, line N`` of the innermost template frame of ``exc``'s traceback (Jinja2 rewrites its
    frames to the templates' files and lines), else the rendered template's file."""
    where = template.filename or template.name or "?"
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(_SUFFIXES) and Path(filename).is_file():
            where = f"{filename}, line {tb.tb_lineno}"
        tb = tb.tb_next
    return where


@functools.lru_cache(maxsize=1)
def _shipped() -> Templates:
    """The shipped templates alone, compiled once per process."""
    return Templates()


def templates_from(templates: Templates | str | Path | None) -> Templates:
    """``templates`` if it is a :class:`Templates`, else the templates of that folder (None: the shipped
    ones only)."""
    if isinstance(templates, Templates):
        return templates
    return _shipped() if templates is None else Templates(templates)
