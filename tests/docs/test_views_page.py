"""docs/views.md names exactly the tables and views the migrations create, each under its
migration file, and every report with its title."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from otel_llmcost.reporting import reports
from otel_llmcost.storage import migrations

from .pages import inline_code, prose, read

PAGE = "docs/views.md"
_CREATE = re.compile(r"CREATE (?:MATERIALIZED )?(?:VIEW|TABLE) IF NOT EXISTS \{database\}\.(\w+)")
_OBJECT = re.compile(r"(v_|llm_|otel_|llmcost_)\w+")


def created() -> dict[str, str]:
    """name -> the migration file that creates it."""
    found = {}
    for path in sorted(migrations.MIGRATIONS_DIR.glob("*.sql")):
        for name in _CREATE.findall(path.read_text(encoding="utf-8")):
            found[name] = path.name
    return found


def sections(page: str) -> dict[str, str]:
    """migration file -> the part of the page from its `NNN_name.sql` line to the next one."""
    text = prose(page)
    marks = [(m.start(), m.group(1)) for m in re.finditer(r"^`(\d{3}_\w+\.sql)`$", text, re.M)]
    ends = [start for start, _ in marks[1:]] + [len(text)]
    return {name: text[start:end] for (start, name), end in zip(marks, ends, strict=True)}


def test_the_page_names_exactly_the_created_tables_and_views():
    on_page = {code for code in inline_code(read(PAGE)) if _OBJECT.fullmatch(code)}
    expected = set(created())
    assert sorted(expected - on_page) == [], f"describe these in {PAGE} (what each answers)"
    assert sorted(on_page - expected) == [], f"{PAGE} names tables or views no migration creates"


def test_each_table_and_view_is_listed_under_its_migration_file():
    page_sections = sections(read(PAGE))
    files = sorted(p.name for p in migrations.MIGRATIONS_DIR.glob("*.sql"))
    assert sorted(page_sections) == files, f"{PAGE} needs one `NNN_name.sql` line per migration file"
    misplaced = [f"{name} ({file})" for name, file in created().items() if f"| `{name}` |" not in page_sections[file]]
    assert misplaced == [], f"list these as a table row under their migration file in {PAGE}"


@pytest.mark.parametrize("name", sorted(p.stem for p in Path(reports.SQL_DIR).glob("*.sql")))
def test_every_report_is_listed_with_its_title(name):
    title = reports.query(name).title
    assert title, f"reporting/sql/{name}.sql has no '-- title:' line"
    assert f"| `{name}` | {title} |" in read(PAGE), f"add the report {name!r} ({title}) to the table in {PAGE}"
