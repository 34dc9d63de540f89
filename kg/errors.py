"""Errors that reach a user: one readable line, no stack trace."""


class SpinekgError(Exception):
    """A problem the user can fix (bad input, missing Java, an inconsistent ontology)."""


class InputError(SpinekgError):
    """Input that cannot be used at all; ``field`` names the offending part (for example ``lines[0].units``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message
