"""The Python examples in the README and docs/ that are marked ``<!-- runnable -->`` run as
written: each in a fresh interpreter, in an empty directory, with its own data directory
(they use the fake provider of otel_llmcost.demo.fakes: no keys, no network)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .pages import ROOT, pages

MARK = "<!-- runnable -->"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def examples() -> list[tuple[str, str]]:
    """(page:line, code) of every Python block right after the runnable mark."""
    found = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            if before.strip() == MARK:
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{page.relative_to(ROOT)}:{line}", match.group(1)))
    return found


def test_examples_that_use_the_fake_provider_are_marked_runnable():
    unmarked = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            if "otel_llmcost.demo.fakes" in match.group(1) and before.strip() != MARK:
                unmarked.append(f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}")
    assert unmarked == [], f"put {MARK} on the line before these examples, so they are run: {unmarked}"


@pytest.mark.parametrize(("where", "code"), examples(), ids=[where for where, _ in examples()])
def test_example_runs(where: str, code: str, tmp_path: Path):
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env["OTEL_LLMCOST_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"the example at {where} failed:\n{done.stderr[-4000:]}"
    assert "Traceback" not in done.stderr, f"the example at {where} logged an error:\n{done.stderr[-4000:]}"
