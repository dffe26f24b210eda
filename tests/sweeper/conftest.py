"""The sweeper tests' fixture; the helpers live in ``sweeper_helpers``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweeper_helpers import run_app


@pytest.fixture(name="run_app")
def _run_app_fixture():
    return run_app
