"""spinekg: load, reason over, query and check claims against the billing-rule knowledge graph.

The public entry points are re-exported here so that tools (the CLI, the HTTP API, notebooks)
depend on this module rather than on its layout.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from spinekg.kg.build import BuildResult, build_graph
from spinekg.kg.errors import SpinekgError
from spinekg.kg.graph import KnowledgeGraph, load_graph

try:
    __version__ = _version("spinekg")  # the one place the version is typed is pyproject.toml
except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
    __version__ = "0+unknown"

__all__ = ["BuildResult", "KnowledgeGraph", "SpinekgError", "__version__", "build_graph", "load_graph"]
