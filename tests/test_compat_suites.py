"""The compatibility matrix (noxfile.py) names suites that exist: a renamed or missing test
file fails here, in the default run, as well as in the compat session itself."""

from __future__ import annotations

import ast

from tests.helpers.paths import ROOT


def _suites() -> tuple[str, ...]:
    """SUITES as noxfile.py declares it (read, not imported: nox is a dev tool only)."""
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "SUITES" for target in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("noxfile.py declares no SUITES")


def test_every_compat_suite_is_a_test_file():
    assert [suite for suite in _suites() if not (ROOT / suite).is_file()] == []


def test_compat_runs_the_provider_contract_and_each_provider_suite():
    suites = set(_suites())
    for name in ("contract", "openai", "anthropic", "google_genai"):
        assert f"tests/providers/test_{name}.py" in suites, name
