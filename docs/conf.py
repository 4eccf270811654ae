"""Sphinx configuration for the randla documentation.

Build from the repository root (what ``make docs`` runs, after building randla
into .venv and installing sphinx, numpydoc, pydata-sphinx-theme, matplotlib):

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

The doctests in the user guide run with ``-b doctest`` instead of ``-b html``.
Figures are committed under docs/_static; the scripts in docs/plots regenerate
them (see the top of each script).
"""

from __future__ import annotations

import pathlib
import shutil

import randla
import sphinx.ext.autosummary

# -- Project -----------------------------------------------------------------

project = "randla"
author = "the randla developers"
copyright = "the randla developers"
version = release = randla.__version__

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "numpydoc",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "plots"]
default_role = "py:obj"  # `name` links to the Python object, as in numpy's docs
# Every cross-reference into randla must resolve. References to other projects
# (numpy, scipy, the standard library) cannot: intersphinx is off (no network
# at build time), so they render as plain text without a warning. Types in
# numpydoc sections ("array_like", "None, int or Generator") stay prose
# (numpydoc_xref_param_type is off).
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!randla\b).*")]

# -- autodoc / autosummary ---------------------------------------------------

# Stubs go to docs/generated (git-ignored), rebuilt each time. Start from no
# stubs: a stale stub of a renamed function would be a page in no toctree, a
# warning that fails the -W build.
_DOCS = pathlib.Path(__file__).parent
shutil.rmtree(_DOCS / "generated", ignore_errors=True)
# Name the pages with autosummary tables (all under api/) instead of ``True``:
# ``True`` takes the list of pages from the environment saved by the previous
# build, which lacks a page added since, so an incremental build into an
# existing docs/_build would leave the new page's stubs out of its toctree.
autosummary_generate = sorted(
    p.relative_to(_DOCS).as_posix() for p in (_DOCS / "api").glob("*.rst")
)
autosummary_imported_members = False
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
autodoc_preserve_defaults = True  # show ``dtype=np.float64``, not ``<class 'numpy.float64'>``
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints_format = "fully-qualified"  # "Bases: numpy.linalg.LinAlgError", not "LinAlgError"

# autosummary's tables show a docstring's first sentence; without this, the
# summary of "Gaussian sketch: i.i.d. entries N(0, 1/k)." stops at "i.i.d.".
sphinx.ext.autosummary.WELL_KNOWN_ABBREVIATIONS += ("i.i.d.",)

# Classes that users never construct themselves: document them without the
# private constructor's signature.
_NO_SIGNATURE = {"randla.sketch.SketchOperator"}


def _hide_private_signature(app, what, name, obj, options, signature, return_annotation):
    if what == "class" and name in _NO_SIGNATURE:
        return "", None
    return None


# -- numpydoc ----------------------------------------------------------------

numpydoc_show_class_members = False  # the class templates list members themselves
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- doctest (``sphinx -b doctest docs docs/_build/doctest``) ----------------

doctest_global_setup = """
import numpy as np
import randla as rl
"""

# -- HTML --------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"randla {release}"
html_static_path = ["_static"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_context = {"default_mode": "auto"}


def setup(app):
    app.connect("autodoc-process-signature", _hide_private_signature)
