"""The fault suite shares the sweep tests' helpers (tests/sweep_helpers.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
