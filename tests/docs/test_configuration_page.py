"""docs/configuration.md holds exactly the settings table that otel_llmcost.config generates."""

from __future__ import annotations

from otel_llmcost import config

from .pages import read


def test_configuration_page_contains_the_generated_settings_table():
    table = config.markdown_table()
    assert table in read("docs/configuration.md"), (
        "docs/configuration.md no longer matches otel_llmcost/config.py (OPTIONS, OBJECT_KEYWORDS). "
        "Regenerate the table with `python -m otel_llmcost.config` and paste its output over the "
        "tables under '## Settings' in docs/configuration.md."
    )


def test_every_setting_has_a_variable_of_its_own():
    # The generated table is keyed by variable: two settings on one variable, or one with
    # none, could not be documented (or set) apart.
    names = [option.env for option in config.OPTIONS]
    assert len(names) == len(set(names))
    assert all(name and name.startswith("OTEL_") for name in names)
