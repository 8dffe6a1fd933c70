"""The type stub matches the built module (mypy stubtest), and the package type-checks."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO


def test_stub_matches_the_native_module() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "remotemedia._native", "--ignore-missing-stub"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("mypy") is None, reason="mypy not installed")
def test_package_passes_mypy_strict() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "-p", "remotemedia"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO / "tests",
    )
    assert r.returncode == 0, r.stdout + r.stderr
