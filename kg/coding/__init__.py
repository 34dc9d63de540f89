"""spinekg code: from a documented procedure (structured, or an operative note) to claim lines, with an
explanation and sources for each line and the documentation a reviewer would ask for."""

from spinekg.kg.coding.engine import Coder

__all__ = ["Coder"]
