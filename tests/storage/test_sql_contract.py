"""Every attribute name the SQL reads must be defined in semconv.py, or a view silently reads ''."""

from __future__ import annotations

import re

from otel_llmcost import semconv
from otel_llmcost.storage.migrations import MIGRATIONS_DIR

_QUOTED_NAME = re.compile(r"'((?:llmcost|gen_ai)\.[A-Za-z0-9_.]+)'")


def _semconv_names() -> set[str]:
    names = {v for v in vars(semconv).values() if isinstance(v, str)}
    names |= {semconv.ratelimit_attribute(k, f) for k in semconv.RATELIMIT_KINDS for f in semconv.RATELIMIT_FIELDS}
    names |= {semconv.attribution_attribute(k) for k in semconv.ATTRIBUTION_KEYS}
    return names


def _sql_names() -> dict[str, set[str]]:
    return {p.name: set(_QUOTED_NAME.findall(p.read_text(encoding="utf-8"))) for p in MIGRATIONS_DIR.glob("*.sql")}


def test_every_attribute_name_in_sql_is_defined_in_semconv():
    known = _semconv_names()
    unknown = {f"{file}: {name}" for file, names in _sql_names().items() for name in names if name not in known}
    assert not unknown, f"names used in SQL but missing from semconv.py: {sorted(unknown)}"


def test_contract_scan_finds_the_names_it_should():
    found = set().union(*_sql_names().values())
    assert semconv.COST_TOTAL in found
    assert semconv.GEN_AI_OPERATION_NAME in found
    assert semconv.ratelimit_attribute("requests", "remaining") in found
    assert semconv.TASK_SUCCESS in found
