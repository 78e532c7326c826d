"""The store the tests of tests/store write to: a new file in the test's temporary folder."""

from __future__ import annotations

import pytest

from wsnas.store import Store


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "wsnas.db") as s:
        yield s
