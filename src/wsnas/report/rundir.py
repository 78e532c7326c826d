"""What a run directory holds, for ``wsnas report``: ``RUN_DIR/experiment.json``.

Every command that fills a directory records there which run (or experiment) of which store it
holds: ``wsnas insights`` (its report folder), ``wsnas search --study`` (``STUDY_DIR/search``),
``wsnas supernet`` (its checkpoint folder, ``--run-dir``) and ``wsnas evolve`` (its output
folder, ``--out-dir``). The file is a JSON object::

    {"experiment": "<run or experiment id>", "store": "<absolute path of the store>",
     "kind": "evolve-validation",            # only for a validation (no run of that id)
     "truth": "store", "truth_config": null, # the ground truth it was given, if any
     "seeds": [0, 1]}                        # a validation's seeds

``wsnas report`` reads it (:func:`read_record`) and asks the store what kind of run the id is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from wsnas.core.errors import WsnasError
from wsnas.core.files import atomic_write

__all__ = ["RECORD", "VALIDATION", "read_record", "record_run_dir"]

#: The file, in a run directory, that records its run and store.
RECORD = "experiment.json"
#: ``kind`` of a record whose id is the prefix of an ``evolve --validate-seeds`` validation.
VALIDATION = "evolve-validation"


def record_run_dir(run_dir: str | Path, store_path: str | Path, run_id: str, *, kind: str | None = None,
                   truth: str | None = None, truth_config: str | None = None,
                   seeds: Sequence[int] | None = None) -> Path:
    """Write ``run_dir/experiment.json`` (creating ``run_dir``); returns its path."""
    record: dict = {"experiment": run_id, "store": str(Path(store_path).resolve())}
    if kind is not None:
        record["kind"] = kind
    if truth is not None:
        record["truth"] = truth
        record["truth_config"] = truth_config
    if seeds is not None:
        record["seeds"] = [int(s) for s in seeds]
    path = Path(run_dir) / RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        fh.write(json.dumps(record, indent=2))
    return path


def read_record(run_dir: str | Path) -> dict:
    """The contents of ``run_dir/experiment.json``, or {} when there is none."""
    meta = Path(run_dir) / RECORD
    if not meta.exists():
        return {}
    try:
        recorded = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WsnasError(f"cannot read {str(meta)!r} ({exc}); give --experiment and --store, "
                         "or delete the file") from None
    if not isinstance(recorded, dict):
        raise WsnasError(f"{str(meta)!r} holds a {type(recorded).__name__}, expected an object "
                         "with 'experiment' and 'store'")
    return recorded
