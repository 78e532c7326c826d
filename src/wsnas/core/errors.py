"""The one exception type for errors a user can cause.

Every message is a single line that names the bad value and what is accepted.
The command line prints it without a traceback and exits with status 2.
"""


class WsnasError(ValueError):
    """A user-caused error (bad input, missing file, corrupt data, config typo)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def shown(value, limit: int = 40) -> str:
    """``repr(value)`` for an error line, shortened in the middle when long (a value of 5,000 digits)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit // 2]}...{text[-8:]} ({len(str(value))} characters)"
