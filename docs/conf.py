"""Sphinx configuration: the API reference from the docstrings, the tutorials run when the site is built."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT), str(DOCS / "_ext")]
os.environ.setdefault("LAMINA_THREADS", "1")  # tutorials pin BLAS threads: the same numbers on every build
os.environ.setdefault("MPLBACKEND", "agg")

import api_pages  # noqa: E402 (found through the path set above)
import attrs  # noqa: E402

import lamina  # noqa: E402

project = "lamina"
author = "the lamina authors"
copyright = "the lamina authors, MIT licence"
release = version = lamina.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
    "plain_docstrings",
    "myst_parser",  # the guide's pages are Markdown (docs/guide/*.md), readable on GitHub as they are
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}

api_pages.write(DOCS)

# docstrings: Google style through napoleon (today most are one line); `name` is a cross-reference
napoleon_google_docstring = True
napoleon_numpy_docstring = False
default_role = "py:obj"
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"exclude-members": "__init__, __new__"}
add_module_names = True
# a name may match several targets (``fit`` of optim and of an estimator): not an error
suppress_warnings = ["ref.python"]

templates_path = ["_templates"]
exclude_patterns = ["_build", "tutorials", "**.ipynb_checkpoints"]
html_theme = "pydata_sphinx_theme"
html_title = f"lamina {release}"
html_static_path = ["_static"]
html_css_files = ["lamina.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    # the reference keeps its table of contents; the tutorials give the room to their code
    "secondary_sidebar_items": {"api/**": ["page-toc", "sourcelink"], "auto_tutorials/*": []},
}
html_sidebars = {"index": []}
html_context = {"default_mode": "auto"}  # light or dark as the reader's system says
html_favicon = "_static/lamina.svg"
html_logo = "_static/lamina.svg"


def source_digest() -> str:
    """A digest of the library's code and the site's configuration: when it changes, all runs again."""
    digest = hashlib.sha256()
    for package in ("lamina", *lamina.SUBPACKAGES):
        for path in sorted((ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    for path in [
        Path(__file__),
        *sorted((DOCS / "_ext").glob("*.py")),
        *sorted((DOCS / "_templates").rglob("*")),
    ]:
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()


# sphinx-gallery skips a tutorial whose file is unchanged since its last run; a changed library runs them all
GALLERY = DOCS / "auto_tutorials"
DIGEST_FILE = GALLERY / ".lamina-source-digest"
digest = source_digest()
stale = not DIGEST_FILE.exists() or DIGEST_FILE.read_text() != digest
lamina_source_digest = (
    digest  # a config value that rebuilds the environment: autodoc reads everything again
)



def remove_orphans() -> None:
    """Removes what sphinx-gallery made from a tutorial that is gone (its page would be an orphan)."""
    kept = {path.stem for path in (DOCS / "tutorials").glob("*.py")}
    for page in GALLERY.glob("*.rst"):
        if page.stem not in kept | {"index", "sg_execution_times"}:
            for made in [*GALLERY.glob(f"{page.stem}.*"), *GALLERY.rglob(f"sphx_glr_{page.stem}_*")]:
                made.unlink()


remove_orphans()
sphinx_gallery_conf = {
    "examples_dirs": "tutorials",
    "gallery_dirs": "auto_tutorials",
    "filename_pattern": r".*\.py$",  # every tutorial runs when the site is built
    "within_subsection_order": "FileNameSortKey",  # 01_..., 02_...: the file name gives the order
    "run_stale_examples": stale,
    "abort_on_example_error": False,  # every failing tutorial is reported, and the build fails
    "only_warn_on_example_error": False,
    "remove_config_comments": True,
    "download_all_examples": False,
    "min_reported_time": 0,
    "show_memory": False,
    "show_signature": False,
    "reset_modules": ("matplotlib",),
    "capture_repr": ("_repr_html_", "__repr__"),
    "matplotlib_animations": False,
}


def remember_digest(app, exception):
    """After a build that ran every tutorial without error, remember the code they ran against."""
    if exception is None and not app.statuscode:
        GALLERY.mkdir(exist_ok=True)
        DIGEST_FILE.write_text(digest)


def skip_foreign(app, what, name, obj, skip, options):
    """Leaves out members a class got from elsewhere (scikit-learn's ``set_fit_request``)."""
    module = getattr(obj, "__module__", None)
    return True if module and not module.startswith("lamina") else None


def record_signature(app, what, name, obj, options, signature, return_annotation):
    """A record's constructor as its fields (lamina's records take ``*args, **kwargs`` on a fast path)."""
    if what == "class" and attrs.has(obj) and signature in (None, "(*args, **kwargs)"):
        fields = [
            f"{f.name}={f.default!r}"
            if f.default is not attrs.NOTHING and not isinstance(f.default, attrs.Factory)
            else f.name
            for f in attrs.fields(obj)
            if f.init
        ]
        return f"({', '.join(fields)})", return_annotation
    return None


def setup(app):
    app.add_config_value("lamina_source_digest", "", "env")
    app.connect("autodoc-skip-member", skip_foreign)
    app.connect("autodoc-process-signature", record_signature)
    app.connect("build-finished", remember_digest)
