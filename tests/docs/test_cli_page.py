"""docs/cli.md lists every `otel-llmcost` command and every report `otel-llmcost report` runs."""

from __future__ import annotations

from typing import Any

import typer

from otel_llmcost import cli
from otel_llmcost.reporting import reports

from .pages import inline_code, read

PAGE = "docs/cli.md"


def command_paths(command: Any, prefix: str = "otel-llmcost") -> list[str]:
    # Duck-typed: typer may build its commands on its own copy of click, so an isinstance
    # check against `click.Group` would see no groups at all (and check nothing).
    commands = getattr(command, "commands", None)
    if commands:
        paths = [path for name, sub in commands.items() for path in command_paths(sub, f"{prefix} {name}")]
        # A group that also runs on its own (`otel-llmcost budgets`) is a command too.
        return ([prefix] if getattr(command, "invoke_without_command", False) else []) + paths
    return [prefix]


def test_the_command_tree_is_seen():
    paths = command_paths(typer.main.get_command(cli.app))
    assert {"otel-llmcost report", "otel-llmcost prices check", "otel-llmcost budgets"} <= set(paths)


def test_every_command_is_on_the_page():
    page = read(PAGE)
    missing = [path for path in command_paths(typer.main.get_command(cli.app)) if path not in page]
    assert missing == [], f"describe these commands in {PAGE}"


def test_every_default_report_is_on_the_page():
    written = set(inline_code(read(PAGE)))
    missing = [name for name in reports.DEFAULT_REPORTS if name not in written]
    assert missing == [], f"list these reports in {PAGE}"
