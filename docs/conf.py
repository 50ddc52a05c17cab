"""Sphinx configuration for the qprim_grad documentation.

Build with warnings as errors::

    sphinx-build -W -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

import qprim_grad

project = "qprim_grad"
author = "qprim_grad developers"
copyright = "2025, qprim_grad developers"
release = qprim_grad.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "_scripts", "_figures", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
html_theme = "furo"
html_title = f"qprim_grad {release}"

# autodoc: public names only, signatures without the noise of type hints in the header
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_default_options = {"show-inheritance": True}
autoclass_content = "class"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# doctest: the ``>>>`` examples of the API pages run with ``sphinx-build -b doctest``,
# with deprecated APIs as errors (as in the test suite)
doctest_global_setup = """
import warnings
warnings.filterwarnings("error", category=DeprecationWarning)
"""


# figures: made from real runs by _scripts/make_figures.py before the pages are read (HTML
# builders; only the missing or outdated ones), written to _figures/ (not in git)
def _make_figures(app) -> None:
    if app.builder.format != "html":
        return
    from sphinx.util import logging

    sys.path.insert(0, str(Path(__file__).parent / "_scripts"))
    import make_figures

    make_figures.build(log=logging.getLogger(__name__).info)


def setup(app):
    app.connect("builder-inited", _make_figures)
