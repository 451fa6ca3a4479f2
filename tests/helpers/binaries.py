"""System binaries that tests drive for real (redis-server, chromium)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_binary(name: str) -> str:
    """Path of a system binary a test drives for real (redis-server, chromium).

    Missing on a developer machine: the test is skipped with the install hint.
    Missing under CI (CI=true): the test fails, so a broken install never passes silently.
    """
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (see .ci/system-packages.txt; apt-get install it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
