"""docs/cli.md lists every `otel-llmcost` command and every report `otel-llmcost report` runs."""

from __future__ import annotations

import click
import typer

from otel_llmcost import cli
from otel_llmcost.reporting import reports

from .pages import inline_code, read

PAGE = "docs/cli.md"


def command_paths(command: click.Command, prefix: str = "otel-llmcost") -> list[str]:
    if isinstance(command, click.Group):
        return [path for name, sub in command.commands.items() for path in command_paths(sub, f"{prefix} {name}")]
    return [prefix]


def test_every_command_is_on_the_page():
    page = read(PAGE)
    missing = [path for path in command_paths(typer.main.get_command(cli.app)) if path not in page]
    assert missing == [], f"describe these commands in {PAGE}"


def test_every_default_report_is_on_the_page():
    written = set(inline_code(read(PAGE)))
    missing = [name for name in reports.DEFAULT_REPORTS if name not in written]
    assert missing == [], f"list these reports in {PAGE}"
