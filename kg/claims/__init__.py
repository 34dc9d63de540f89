"""Claim validation over the reasoned graph (see kg/claims/engine.py)."""

from kg.claims.engine import ClaimValidator
from kg.claims.model import Claim, Finding, Line

__all__ = ["Claim", "ClaimValidator", "Finding", "Line"]
