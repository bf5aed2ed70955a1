"""Lets lamina's docstrings, written to be read as plain text by ``help()``, render on the site as written.

They hold maths in plain text (``|x|``, ``x * w``, ``classes_``) beside ``code`` in backticks. Outside
backticks, characters reStructuredText would read as markup are escaped; an indented run of lines (a formula
block) becomes a block quote. A docstring that still does not parse cleanly is shown as a literal block, so a
docstring can never break the build; each one is logged (``sphinx -v``) for a person to tidy.
"""

from __future__ import annotations

import re

import docutils.frontend
import docutils.parsers.rst
import docutils.utils
from sphinx.util import logging

logger = logging.getLogger(__name__)
CODE = re.compile(r"(``.+?``|:\w+:`[^`]+`|`[^`]+`_?_?)")
MARKUP = re.compile(r"(?<!\\)([*|])|(?<=\w)_(?=\W|$)")


def escape(text: str) -> str:
    """The text with ``*``, ``|`` and a word's trailing ``_`` escaped outside backtick spans."""
    parts = CODE.split(text)
    return "".join(
        part if i % 2 else MARKUP.sub(lambda m: "\\" + m.group(0), part) for i, part in enumerate(parts)
    )


def indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def plain(lines: list[str]) -> list[str]:
    """The lines escaped, with a blank line around each change of indentation that is not a list's own."""
    out: list[str] = []
    for line in lines:
        stripped = line.lstrip()
        is_markup = stripped.startswith((":", ".. "))
        line = (
            line
            if is_markup
            else line[: indent(line)]
            + (
                stripped[:2] + escape(stripped[2:])
                if stripped.startswith(("- ", "* "))
                else escape(stripped)
            )
        )
        previous = next((p for p in reversed(out) if p.strip()), None)
        if line.strip() and out and out[-1].strip() and previous is not None:
            before, now = indent(previous), indent(line)
            bullet = previous.lstrip().startswith(("- ", "* "))
            continued = bullet and now == before + 2 or previous.rstrip().endswith("::")
            closes_item = now < before and (
                line.lstrip().startswith(("- ", "* ")) or bullet_owner(out, now)
            )
            if now != before and not continued and not closes_item:
                out.append("")
        out.append(line)
    return out


def bullet_owner(out: list[str], now: int) -> bool:
    """Whether the block being closed is the continuation of a list item at indentation ``now``."""
    for p in reversed(out):
        if p.strip() and indent(p) == now:
            return p.lstrip().startswith(("- ", "* "))
        if p.strip() and indent(p) < now:
            return False
    return False


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


def process(app, what, name, obj, options, lines):
    """Rewrites a docstring's lines in place (autodoc-process-docstring)."""
    if not lines:
        return
    if what in ("data", "attribute") and "\n".join(lines).strip() == (type(obj).__doc__ or "").strip():
        lines[:] = []  # a constant's docstring would be its type's (dict, int): none
        return
    rewritten = plain(list(lines))
    if not parses_cleanly(rewritten, app.env):
        logger.verbose("docstring of %s shown as written (literal block)", name)
        rewritten = ["::", "", *("    " + line for line in lines), ""]
    lines[:] = rewritten


def setup(app):
    app.connect("autodoc-process-docstring", process, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
