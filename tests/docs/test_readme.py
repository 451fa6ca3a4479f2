"""The README gives a newcomer the two set-up commands CI runs, and every relative link in
the README and docs/ leads to a file (and heading) that exists."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from .pages import ROOT, anchors, links, pages, read

DEMO = 'pip install -e ".[all]" && otel-llmcost demo'
TESTS = 'pip install -e ".[dev]" && python -m pytest'


@pytest.mark.parametrize("command", [DEMO, TESTS])
def test_readme_has_the_set_up_command(command):
    assert command in read("README.md"), f"README.md must show `{command}` verbatim (.ci/run runs the test command)"


def test_readme_says_how_to_get_the_checkout():
    readme = read("README.md")
    assert "git clone " in readme and "\ncd " in readme


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in links(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        destination = (page.parent / unquote(path)).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination.read_text(encoding="utf-8")):
            broken.append(f"{target} (no such heading)")
    assert broken == [], f"{page.relative_to(ROOT)}: broken links {broken}"
