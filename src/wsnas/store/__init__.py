"""The results store (moved to a package; split into modules in the next step)."""

from wsnas.store.writer import (  # noqa: F401
    _GT_COLUMNS,
    _MIGRATIONS,
    ACCURACY_METRICS,
    RUN_STATUSES,
    SCHEMA_VERSION,
    Store,
    code_version,
    config_hash,
)
