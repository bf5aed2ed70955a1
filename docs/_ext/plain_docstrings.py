"""Lets lamina's docstrings, written to be read as plain text by ``help()``, render on the site as written.

They hold maths in plain text (``|x|``, ``x * w``, ``classes_``) beside ``code`` in backticks. Outside
backticks, characters reStructuredText would read as markup are escaped; an indented run of lines (a formula
block) is kept as written, in a literal block. A docstring that still does not parse cleanly is shown as a
literal block, so a
docstring can never break the build; each one is logged (``sphinx -v``) for a person to tidy.
"""

from __future__ import annotations

import itertools
import re

import docutils.frontend
import docutils.parsers.rst
import docutils.utils
from sphinx.util import logging
from sphinx.util.docstrings import prepare_docstring

from lamina.layers.records.outline import HEADING as OUTLINE

logger = logging.getLogger(__name__)
CODE = re.compile(r"(``.+?``|:\w+:`[^`]+`|`[^`]+`_?_?)", re.DOTALL)  # a span may run over a line's end
MARKUP = re.compile(r"(?<!\\)([*|])|(?<=\w)_(?=\W|$)", re.MULTILINE)


def escape(text: str) -> str:
    """The text with ``*``, ``|`` and a word's trailing ``_`` escaped outside backtick spans."""
    parts = CODE.split(text)
    return "".join(
        part if i % 2 else MARKUP.sub(lambda m: "\\" + m.group(0), part) for i, part in enumerate(parts)
    )


def indent(line: str) -> int:
    return len(line) - len(line.lstrip())


BULLET = ("- ", "* ")


def escaped(lines: list[str]) -> list[str]:
    """Lines of text escaped together (a backtick span may run over several); roles' and directives' lines
    as they are."""
    out: list[str] = []
    chunk: list[str] = []
    for line in [*lines, None]:
        if line is None or line.lstrip().startswith((":", ".. ")):
            out += escape("\n".join(chunk)).split("\n") if chunk else []
            out += [] if line is None else [line]
            chunk = []
        else:
            chunk.append(line)
    return out


def plain(lines: list[str]) -> list[str]:
    """The lines escaped; an indented run (a formula block) kept as written in a literal block."""
    out: list[tuple[str, bool]] = []  # (line, kept as written)
    literal = None  # the indentation the literal block started above
    for line in lines:
        now, stripped = indent(line), line.strip()
        if literal is not None:
            if not stripped or now > literal:
                out.append((line, True))
                continue
            out.append(("", False))
            literal = None
        previous = next((p for p, _ in reversed(out) if p.strip()), None)
        if stripped and previous is not None and out[-1][0].strip():
            before = indent(previous)
            if now > before and not (previous.lstrip().startswith(BULLET) and now == before + 2):
                if not previous.rstrip().endswith("::"):
                    out += [("", True), (" " * before + "::", True), ("", True)]
                out.append((line, True))
                literal = before
                continue
            if now < before and not stripped.startswith(BULLET):
                out.append(("", False))
        out.append((line, False))
    result: list[str] = []
    for kept, group in itertools.groupby(out, key=lambda pair: pair[1]):
        group_lines = [line for line, _ in group]
        result += group_lines if kept else escaped(group_lines)
    return result


def parses_cleanly(lines: list[str], env) -> bool:
    """Whether docutils reads the lines without a warning (each backtick span taken as code)."""
    text = CODE.sub("``code``", "\n".join(lines))
    settings = docutils.frontend.get_default_settings(docutils.parsers.rst.Parser)
    settings.report_level = 2
    settings.halt_level = 5
    settings.warning_stream = False
    settings.env = env
    document = docutils.utils.new_document("<docstring>", settings)
    messages = []
    document.reporter.attach_observer(
        lambda message: messages.append(message) if message["level"] >= 2 else None
    )
    docutils.parsers.rst.Parser().parse(text, document)
    return not messages


def described(obj) -> str:
    """One line for a constant: its type and value (a dict's keys)."""
    if isinstance(obj, dict) and obj:
        return f"A ``dict`` with the keys {', '.join(f'``{key!r}``' for key in obj)}."
    shown = repr(obj) if len(repr(obj)) <= 100 else repr(obj)[:97] + "..."
    return f"A ``{type(obj).__name__}``: ``{shown}``."


def process(app, what, name, obj, options, lines):
    """Rewrites a docstring's lines in place (autodoc-process-docstring)."""
    if not lines:
        return
    if OUTLINE in lines:  # help()'s outline (lamina.layers.records.outline): the page shows the same
        del lines[lines.index(OUTLINE):]
        while lines and not lines[-1].strip():
            lines.pop()
    own = prepare_docstring(type(obj).__doc__ or "")
    if what in ("data", "attribute") and [line.strip() for line in lines if line.strip()] == [
        line.strip() for line in own if line.strip()
    ]:
        lines[:] = [described(obj)]  # not its type's docstring (dict, Mode)
        return
    rewritten = plain(list(lines))
    if not parses_cleanly(rewritten, app.env):
        logger.verbose("docstring of %s shown as written (literal block)", name)
        rewritten = ["::", "", *("    " + line for line in lines), ""]
    lines[:] = rewritten


def setup(app):
    app.connect("autodoc-process-docstring", process, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
