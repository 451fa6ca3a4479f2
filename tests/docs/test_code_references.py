"""Module names and repository paths the README and docs mention exist: a page that still
says `otel_llmcost.fakes` or `otel_llmcost/sql/` after a move fails here."""

from __future__ import annotations

import importlib
import re

import pytest

from .pages import ROOT, inline_code, pages

_MODULE = re.compile(r"otel_llmcost(?:\.\w+)+")
_PATH = re.compile(r"(?:otel_llmcost|tests|benchmarks|examples|dashboards|collector-config|docker|docs)/[\w./-]*")


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` names a module, or an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_mentioned_modules_exist(page):
    codes = inline_code(page.read_text(encoding="utf-8"))
    dotted = sorted({code for code in codes if _MODULE.fullmatch(code)})
    missing = [name for name in dotted if not resolves(name)]
    assert missing == [], f"{page.relative_to(ROOT)} names modules or attributes that do not exist: {missing}"


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_mentioned_paths_exist(page):
    codes = inline_code(page.read_text(encoding="utf-8"))
    paths = sorted({code for code in codes if _PATH.fullmatch(code) and "*" not in code})
    missing = [path for path in paths if not (ROOT / path).exists()]
    assert missing == [], f"{page.relative_to(ROOT)} names paths that do not exist: {missing}"
