"""The package's layout holds: subsystems depend only on those below them, with no cycles,
and the app-side import path stays light (no SDK, chdb or pandas until the app asks)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "otel_llmcost"

# Highest first: a subsystem may import those after it, never those before it
# (docs/architecture.md). The shared leaves may be imported by any of them.
LAYERS = (
    "cli",
    "demo",
    "reporting",
    "instrumentation",
    "providers",
    "budgets",
    "signals",
    "pricing",
    "exporter",
    "storage",
)
LEAVES = ("config", "config_files", "runtime", "semconv", "version")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every otel_llmcost module ``path`` imports, at any level (TYPE_CHECKING included)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("otel_llmcost"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("otel_llmcost"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _subsystem(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for target in _imports(path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def test_every_subsystem_is_a_known_layer_or_leaf():
    top = {_subsystem(m) for m in _graph() if _subsystem(m)}
    assert top <= set(LAYERS) | set(LEAVES), sorted(top - set(LAYERS) - set(LEAVES))


def test_dependencies_point_down_the_layers():
    upward = []
    for module, targets in _graph().items():
        source = _subsystem(module)
        for target in targets:
            destination = _subsystem(target)
            if not source or not destination or destination == source or destination in LEAVES:
                continue
            if source in LEAVES:
                upward.append(f"{module} -> {target} (a leaf imports a subsystem)")
            elif LAYERS.index(destination) < LAYERS.index(source):
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_leaves_import_only_leaves():
    for module, targets in _graph().items():
        if _subsystem(module) in LEAVES:
            assert {_subsystem(t) for t in targets} <= set(LEAVES) | {""}, (module, targets)


def test_no_import_cycles():
    graph = _graph()
    # A package's __init__ re-exporting its own modules is not a design cycle.
    for module in graph:
        graph[module] = {t for t in graph[module] if not t.startswith(module + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == []


def test_instrumenting_imports_no_sdk_and_nothing_heavy():
    # What `opentelemetry-instrument` does in an app that has not imported any SDK yet.
    script = (
        "import sys\n"
        "from otel_llmcost import LLMCostInstrumentor\n"
        "LLMCostInstrumentor().instrument()\n"
        "heavy = ('openai', 'anthropic', 'google.genai', 'chdb', 'pandas', 'pyarrow', 'numpy',\n"
        "         'genai_prices', 'tiktoken', 'clickhouse_connect', 'yaml', 'typer', 'rich')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_sdk_imported_after_instrument_is_patched_then():
    script = (
        "import sys\n"
        "from otel_llmcost import LLMCostInstrumentor\n"
        "instrumentor = LLMCostInstrumentor()\n"
        "instrumentor.instrument()\n"
        "assert 'openai' not in sys.modules\n"
        "import openai\n"
        "from openai.resources.chat.completions import Completions\n"
        "print(type(vars(Completions)['create']).__name__, 'anthropic' in sys.modules)\n"
        "instrumentor.uninstrument()\n"
        "print(type(vars(Completions)['create']).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["FunctionWrapper", "False", "function"]
