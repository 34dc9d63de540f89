"""Claim validation over the reasoned graph (see kg/claims/engine.py)."""

from spinekg.kg.claims.engine import ClaimValidator
from spinekg.kg.claims.model import Claim, Finding, Line

__all__ = ["Claim", "ClaimValidator", "Finding", "Line"]
