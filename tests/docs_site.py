"""Builds the documentation site once per test session: ``python -m sphinx -W -b html docs docs/_build/html``.

The build is incremental where it can be: Sphinx keeps its doctrees in the output folder and sphinx-gallery
runs a tutorial again only when its file, or the library's code, changed (docs/conf.py). After a failed build
both caches are dropped, so the next build reads and runs everything again and reports every warning anew.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HTML = DOCS / "_build" / "html"
TUTORIALS = sorted(p.stem for p in (DOCS / "tutorials").glob("*.py"))


@functools.cache
def build() -> tuple[int, str, float]:
    """(return code, the build's output, seconds) of one build, made at the first call of the session."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-b", "html", str(DOCS), str(HTML)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "LAMINA_THREADS": "1"},
    )
    if done.returncode:
        shutil.rmtree(HTML / ".doctrees", ignore_errors=True)
        (DOCS / "auto_tutorials" / ".lamina-source-digest").unlink(missing_ok=True)
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - began


def built() -> Path:
    """The built site's folder, after a build that succeeded (else the build's output as the failure)."""
    code, output, _ = build()
    assert code == 0, f"the documentation build failed (exit {code}):\n{output[-6000:]}"
    return HTML
