"""spinekg: load, reason over, query and check claims against the billing-rule knowledge graph.

The public entry points are re-exported here so that tools (the CLI, the HTTP API, notebooks)
depend on this module rather than on its layout.
"""

from kg.build import BuildResult, build_graph
from kg.errors import SpinekgError
from kg.graph import KnowledgeGraph, load_graph

__all__ = ["BuildResult", "KnowledgeGraph", "SpinekgError", "build_graph", "load_graph"]
