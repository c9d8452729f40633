"""Shared pytest setup: tests import tiny models from tests/fixtures.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run only where Triton can launch on a CUDA GPU."""
    import pytest

    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu:
        return
    from roon.kernels.dispatch import gpu_missing

    reason = gpu_missing()
    if reason is not None:
        for item in gpu:
            item.add_marker(pytest.mark.skip(reason=f"no GPU: {reason}"))
