"""Where the repository's files are, for tests that read what ships beside the package."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
ARTIFACTS = ROOT / "test-artifacts"
