"""docs/span-attributes.md names every attribute, event and metric of semconv.py, and every
gen_ai.* / llmcost.* name the docs mention exists there."""

from __future__ import annotations

import itertools
import re

from otel_llmcost import semconv

from .pages import inline_code, pages, read

PAGE = "docs/span-attributes.md"
PREFIXES = ("gen_ai.", "llmcost.", "server.", "error.", "http.")


def defined_names() -> set[str]:
    """Every name semconv.py defines, with the families it builds from parts expanded."""
    names = {
        value
        for key, value in vars(semconv).items()
        if not key.startswith("_") and isinstance(value, str) and value.startswith(PREFIXES)
    }
    prefixes = {name for name in names if name.endswith(".")}  # RATELIMIT_PREFIX, PROMPT_COMPONENT_PREFIX
    names -= prefixes
    names |= {
        semconv.ratelimit_attribute(kind, field)
        for kind, field in itertools.product(semconv.RATELIMIT_KINDS, semconv.RATELIMIT_FIELDS)
    }
    names |= {semconv.PROMPT_COMPONENT_PREFIX + component for component in semconv.PROMPT_COMPONENTS}
    names |= {semconv.attribution_attribute(key) for key in semconv.ATTRIBUTION_KEYS}
    return names


def expand(text: str) -> list[str]:
    """Shell-style brace expansion: ``a.{b,c}.d`` -> ``a.b.d``, ``a.c.d``."""
    match = re.search(r"\{([^{}]*)\}", text)
    if match is None:
        return [text]
    head, tail = text[: match.start()], text[match.end() :]
    return [name for part in match.group(1).split(",") for name in expand(head + part + tail)]


def mentioned_names(text: str) -> set[str]:
    """The gen_ai.* / llmcost.* names written as inline code (Python calls such as
    ``llmcost.task(...)`` and metric labels such as ``{action="warn"}`` aside)."""
    found = set()
    for code in inline_code(text):
        code = re.sub(r"(?<=\w)\{[^{}]*\}$", "", code.strip())  # a metric's labels: llmcost.cost{model}
        if not re.fullmatch(r"(gen_ai|llmcost)\.[\w.{},*]+", code):
            continue
        found.update(expand(code))
    return found


def test_every_semconv_name_is_on_the_page():
    written = set(inline_code(read(PAGE)))
    missing = sorted(defined_names() - written)
    assert missing == [], f"add these names from otel_llmcost/semconv.py to {PAGE}, with their meaning: {missing}"


def test_every_name_the_docs_mention_is_defined():
    defined = defined_names()
    unknown = []
    for page in pages():
        for name in sorted(mentioned_names(page.read_text(encoding="utf-8"))):
            if name in defined:
                continue
            if name.endswith(".*") and any(known.startswith(name[:-1]) for known in defined):
                continue  # a documented family, e.g. llmcost.ratelimit.*
            unknown.append(f"{page.name}: {name}")
    assert unknown == [], (
        "these names are not in otel_llmcost/semconv.py (a typo, or a renamed attribute): "
        f"{unknown}; write Python API as calls, e.g. `llmcost.attributes(...)`"
    )


def test_brace_expansion():
    assert expand("a.{b,c}.{d,e}") == ["a.b.d", "a.b.e", "a.c.d", "a.c.e"]
