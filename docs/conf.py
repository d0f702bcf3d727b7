"""Sphinx configuration of the darec documentation.

Build (offline, warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Set ``DOCS_ONLINE=1`` to link to the documentation of Python, PyTorch, Lightning, PyG, ...
through intersphinx (that needs network access; offline builds leave it off).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document the working tree, not an installed copy

import darec  # noqa: E402

# -- project -----------------------------------------------------------------------------------
project = "darec"
author = "darec contributors"
copyright = "darec contributors"
release = darec.__version__
version = ".".join(release.split(".")[:2])

# -- general -----------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
html_static_path: list[str] = []
nitpicky = False
pygments_style = "sphinx"

# -- autodoc -----------------------------------------------------------------------------------
# Only darec's own members: the LightningModule, Callback, Metric and nn.Module bases bring
# hundreds of inherited members whose docstrings are not ours (and not all valid reST).
# Sphinx reads any value given for a flag option as "on" (False included), so the options that
# must stay off are dropped from the dict rather than passed on as False.
_AUTODOC_OPTIONS = {
    "members": True,
    "undoc-members": False,
    "inherited-members": False,
    "show-inheritance": True,
}
autodoc_default_options = {name: value for name, value in _AUTODOC_OPTIONS.items() if value is not False}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True
# Overridden hooks without a docstring of their own (``setup``, ``train_dataloader``,
# ``configure_optimizers``, ``forward``, ...) would otherwise inherit Lightning's and PyTorch's
# docstrings, which use roles and directives of those projects' docs (``:paramref:``,
# ``.. testcode::``, labels such as ``multiple-dataloaders``) and fail the build. Not inheriting
# docstrings also keeps those hooks out of the reference, since undocumented members are skipped.
autodoc_inherit_docstrings = False

# -- napoleon: Google style only ---------------------------------------------------------------
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_include_init_with_doc = False
napoleon_use_rtype = False
napoleon_use_ivar = True

# -- myst --------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# -- intersphinx: only online (an unreachable inventory is an untyped warning, fatal under -W) -
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
        "lightning": ("https://lightning.ai/docs/pytorch/stable", None),
        "torch_geometric": ("https://pytorch-geometric.readthedocs.io/en/latest", None),
        "torchmetrics": ("https://lightning.ai/docs/torchmetrics/stable", None),
    }
    if os.environ.get("DOCS_ONLINE")
    else {}
)

# -- html --------------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"darec {release}"
html_theme_options = {
    "description": "Disentangled alignment of LLM text representations with collaborative filtering",
    "fixed_sidebar": True,
    "show_relbars": True,
}
