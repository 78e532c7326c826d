"""The one exception type for errors a user can cause.

Every message is a single line that names the bad value and what is accepted.
The command line prints it without a traceback and exits with status 2.
"""


class WsnasError(ValueError):
    """A user-caused error (bad input, missing file, corrupt data, config typo)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class Diverged(WsnasError):
    """A training whose loss became NaN or infinite: its results are no measurement.

    ``epoch`` is the 1-based epoch in which the loss stopped being finite, ``loss`` its value,
    ``run_id`` the run that diverged (None for a training outside a run).
    """

    def __init__(self, message: str, *, epoch: int = 0, loss: float = float("nan"), run_id: str | None = None):
        super().__init__(message)
        self.epoch, self.loss, self.run_id = epoch, loss, run_id

    def __reduce__(self):  # picklable with its fields (a job's exception travels back from a worker)
        return (type(self), (str(self),), {"epoch": self.epoch, "loss": self.loss, "run_id": self.run_id})


def shown(value, limit: int = 40) -> str:
    """``repr(value)`` for an error line, shortened in the middle when long (a value of 5,000 digits)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit // 2]}...{text[-8:]} ({len(str(value))} characters)"
