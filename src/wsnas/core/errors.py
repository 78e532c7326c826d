"""The one exception type for errors a user can cause.

Every message is a single line that names the bad value and what is accepted.
The command line prints it without a traceback and exits with status 2.
"""


class WsnasError(ValueError):
    """A user-caused error (bad input, missing file, corrupt data, config typo)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
