"""Sphinx configuration: the user guide and the API reference of skticket.

Built offline with warnings as errors (``.ci/run``):
``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
Nothing here reaches the network: no intersphinx, no remote images.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import sys

# The package from this checkout, whatever is installed.
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import skticket  # noqa: E402

project = "skticket"
author = "the skticket developers"
copyright = "the skticket developers"
release = skticket.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"

# The API reference: one page per public name, generated at build time from the
# autosummary tables in api/index.rst (the stubs are build output, not sources).
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # numpydoc sections already give every type
# skticket.onnx imports the onnx extra; where it is not installed (the docs extra alone),
# its page is built from stand-ins of skl2onnx and onnx, whose names it only imports.
autodoc_mock_imports = [name for name in ("onnx", "skl2onnx")
                        if importlib.util.find_spec(name) is None]

# numpydoc renders the Parameters/Attributes/... sections. The class pages list
# their members through autodoc (the template in _templates/autosummary), so
# numpydoc's own member tables, which would need a stub page per method, are off.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_static_path: list[str] = []
html_title = f"skticket {release}"
html_show_sourcelink = False


# A shape names a fitted attribute ("ndarray of shape (n_features_in_,)", as in
# scikit-learn's docstrings). numpydoc passes a type on as reST text, where docutils
# would read the trailing underscore as a link to a target named "n_features_in":
# such underscores are escaped in shapes, before numpydoc reads the docstring.
_SHAPE = re.compile(r"shape \(([^()]*)\)")
_TRAILING_UNDERSCORE = re.compile(r"\b([A-Za-z]\w*)_(?=\s*[,)]|$)")


def _escape_shapes(app, what, name, obj, options, lines: list[str]) -> None:
    for i, line in enumerate(lines):
        lines[i] = _SHAPE.sub(
            lambda match: "shape (" + _TRAILING_UNDERSCORE.sub(r"\1\\_", match[1]) + ")", line)


_METADATA_REQUEST = re.compile(r"set_\w+_request")


def _skip_metadata_requests(app, what, name, obj, skip, options):
    # scikit-learn generates set_{method}_request on every estimator that takes
    # metadata (metadata routing); their docstrings refer to scikit-learn's own
    # glossary and user guide, and scikit-learn documents them.
    if _METADATA_REQUEST.fullmatch(name):
        return True
    return None


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _escape_shapes, priority=100)
    app.connect("autodoc-skip-member", _skip_metadata_requests)
