"""The life of a run in the store: created or resumed, running, then done or interrupted.

Every command and recipe that trains goes through this module, so a run's status always says
what happened to it:

* :func:`open_run` creates the run (its id, kind, config and seed), or returns the stored one
  when a rerun asks for the same run: a run id that exists with another kind, config or seed
  is an error, so results of different settings never mix under one id;
* :func:`running` marks runs ``running`` while a block of work goes on; when the block ends
  normally every run not already finished is marked ``done``; a run whose training diverged
  (:class:`~wsnas.core.errors.Diverged`, its loss NaN or infinite) is marked ``diverged``; on
  any other exception, Ctrl-C included, every run not yet finished is marked ``interrupted``
  (so are the others when one diverged) and the exception goes on
  (the CLI turns Ctrl-C into one line; a rerun continues from the checkpoints), except when the
  store stayed locked by another process (:class:`~wsnas.store.StoreLocked`): then no status
  can be written, the runs keep theirs, and a rerun resumes them all the same;
* :func:`train_run` is the whole life of a run that one trainer trains: open, resume from the
  trainer's checkpoint, train inside :func:`running`.

Runs whose work finishes one by one inside the block (jobs coming back from an executor) are
marked with :meth:`Run.finish` as they arrive.

Inside :func:`recorded_command` (the ``wsnas`` command line wraps every command in it), each run
:func:`open_run` creates is stored with the command and its effective options (``wsnas store
config RUN`` prints them back as the YAML that ``--config`` reads). They are a record, not part of
the run's identity: a rerun with other execution options (``--threads``) still resumes the run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from wsnas.core.errors import Diverged
from wsnas.store import Store, StoreLocked


@dataclass
class Run:
    """One run of the store, as this process drives it."""

    store: Store
    run_id: str
    status: str

    @property
    def done(self) -> bool:
        """True when the run finished in this or an earlier process (a rerun skips its work)."""
        return self.status == "done"

    def set_status(self, status: str) -> None:
        self.store.set_run_status(self.run_id, status)
        self.status = status

    def finish(self) -> None:
        """Mark the run done (its results are all in the store)."""
        self.set_status("done")


# the command whose runs open_run is creating: {"command": "supernet", "options": {...}}, or None
_COMMAND: ContextVar[dict[str, Any] | None] = ContextVar("wsnas_command", default=None)


@contextmanager
def recorded_command(command: str, options: Mapping[str, Any]) -> Iterator[None]:
    """Store ``command`` (``supernet``, ``store export``) and its effective ``options`` with every run
    :func:`open_run` creates in the block (and with a run it resumes that has none recorded)."""
    token = _COMMAND.set({"command": command, "options": dict(options)})
    try:
        yield
    finally:
        _COMMAND.reset(token)


def open_run(store: Store, run_id: str, kind: str, config: Mapping[str, Any], *, seed: int | None = None) -> Run:
    """Create the run, or resume the stored one with the same kind, config and seed."""
    row = store.ensure_run(run_id, kind, config, seed=seed, command=_COMMAND.get())
    return Run(store, run_id, row["status"])


@contextmanager
def running(*runs: Run) -> Iterator[tuple[Run, ...]]:
    """Mark ``runs`` running for the block; done after it, interrupted if it raises."""
    for run in runs:
        run.set_status("running")
    try:
        yield runs
    except StoreLocked:
        raise  # the status cannot be written either (nor waited for again); a rerun resumes
    except BaseException as exc:
        for run in runs:
            if not run.done:
                try:
                    run.set_status("diverged" if _diverged(exc, run, runs) else "interrupted")
                except Exception:  # noqa: BLE001 - the original exception matters more
                    pass
        raise
    for run in runs:
        if not run.done:
            run.finish()


def _diverged(exc: BaseException, run: Run, runs: tuple[Run, ...]) -> bool:
    """Whether ``exc`` says that ``run`` itself diverged (the other runs were only interrupted)."""
    if not isinstance(exc, Diverged):
        return False
    return exc.run_id == run.run_id if exc.run_id is not None else len(runs) == 1


class Trainable(Protocol):
    """What :func:`train_run` needs of a trainer (``wsnas.training.trainer.SupernetTrainer``)."""

    def config(self) -> dict: ...

    def try_resume(self) -> bool: ...

    def train(self, **kwargs) -> dict: ...


def train_run(store: Store, run_id: str, kind: str, trainer: Trainable, *, seed: int | None = None,
              config: Mapping[str, Any] | None = None, **train_options) -> tuple[dict, bool]:
    """Open the run (``config``: the trainer's own by default), resume its checkpoint, train it.

    Returns the trainer's summary of its last epoch and whether a checkpoint was resumed.
    """
    run = open_run(store, run_id, kind, trainer.config() if config is None else config, seed=seed)
    resumed = trainer.try_resume()
    with running(run):
        summary = trainer.train(**train_options)
    return summary, resumed


__all__ = ["Run", "Trainable", "open_run", "recorded_command", "running", "train_run"]
