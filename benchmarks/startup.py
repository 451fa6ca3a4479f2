"""Start-up cost of ``opentelemetry-instrument`` with otel-llmcost, against bare Python in the same run.

Three cases, run round-robin (one of each per round, so machine noise hits all three alike):

* bare:     ``python -c "import openai"``
* disabled: ``opentelemetry-instrument --traces_exporter none --metrics_exporter none python -c "import openai"``
            with ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=llmcost`` (OpenTelemetry's own start-up)
* enabled:  the same with otel-llmcost enabled

It prints the minimum and median wall time and the median CPU time (user + sys of the child,
steadier than the wall clock on a loaded machine) per case, otel-llmcost's added time
(enabled - disabled), OpenTelemetry's own share (disabled - bare), the total added, and the
ratio instrumented / bare. Two checks in fresh processes follow:

* which of openai, anthropic, google.genai, genai_prices, tiktoken, chdb, pandas are in
  ``sys.modules`` after ``LLMCostInstrumentor().instrument()``, and after the app's own
  ``import openai``: anthropic and google.genai must stay absent;
* the modules imported only when otel-llmcost is enabled, from one ``PYTHONPROFILEIMPORTTIME=1``
  run of each instrumented case (``python -X importtime``): what otel-llmcost's share is made of.

The exit status is 1 when anthropic or google.genai is imported, or when otel-llmcost's added
median wall time exceeds ``--max-added-s``.

    python benchmarks/startup.py --quick                          # 3 rounds (CI: tests/test_benchmarks_startup.py)
    python benchmarks/startup.py                                  # 31 rounds
    python benchmarks/startup.py --python /tmp/vb_all/bin/python  # another venv (needs openai and otel-llmcost)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = "import openai"
# module name -> distribution name, in the order they are reported
WATCHED = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google.genai": "google-genai",
    "genai_prices": "genai-prices",
    "tiktoken": "tiktoken",
    "chdb": "chdb",
    "pandas": "pandas",
}
# SDKs the app does not import: instrument() must not import them for it.
MUST_BE_ABSENT = ("anthropic", "google.genai")

CASES = ("bare", "disabled", "enabled")
LABELS = {
    "bare": f'bare `python -c "{APP}"`',
    "disabled": "opentelemetry-instrument, llmcost disabled",
    "enabled": "opentelemetry-instrument, llmcost enabled",
}

_MODULES_SCRIPT = f"""
import json, sys
watched = {list(WATCHED)!r}
from otel_llmcost import LLMCostInstrumentor
LLMCostInstrumentor().instrument()
after_instrument = [m for m in watched if m in sys.modules]
{APP}
after_app = [m for m in watched if m in sys.modules]
import importlib.metadata as md
def version(dist):
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None
import otel_llmcost
print(json.dumps({{
    "after_instrument": after_instrument,
    "after_app": after_app,
    "installed": {{m: version(d) for m, d in {WATCHED!r}.items()}},
    "otel_llmcost": [otel_llmcost.__version__, otel_llmcost.__file__],
    "python": sys.version.split()[0],
}}))
"""


# case -> (command, environment, working directory)
Commands = dict[str, tuple[list[str], dict[str, str], str]]


def child_env(pycache: str) -> dict[str, str]:
    """The caller's environment without what would change the measurement.

    OTEL_* settings are dropped. Bytecode is written and read under ``pycache``
    (PYTHONPYCACHEPREFIX), as an installed app has its .pyc files, even when the caller
    sets PYTHONDONTWRITEBYTECODE: with it, every source edited since its .pyc was written
    (an editable install being worked on) would be compiled again on every run.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    for key in ("PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE"):
        env.pop(key, None)
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def commands(python: str, env: dict[str, str], cwd: str) -> Commands:
    """The three cases. They run in ``cwd``, an empty directory: ``python -c`` puts the working
    directory first on sys.path, so run from a checkout they would import its otel_llmcost
    instead of the one installed in the venv being measured."""
    instrument = Path(python).parent / "opentelemetry-instrument"
    if not instrument.exists():
        sys.exit(f"{instrument} not found: --python must be a venv's interpreter with otel-llmcost installed")
    auto = [str(instrument), "--traces_exporter", "none", "--metrics_exporter", "none", python, "-c", APP]
    return {
        "bare": ([python, "-c", APP], env, cwd),
        "disabled": (auto, {**env, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "llmcost"}, cwd),
        "enabled": (auto, env, cwd),
    }


def _run_once(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run; exits with its stderr on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(cases: Commands, runs: int, warmup: int) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {case: {"wall": [], "cpu": []} for case in CASES}
    for round_ in range(warmup + runs):
        # Rotate which case goes first, so no case always pays for following the previous round.
        order = CASES[round_ % 3 :] + CASES[: round_ % 3]
        for case in order:
            wall, cpu = _run_once(*cases[case])
            if round_ >= warmup:
                results[case]["wall"].append(wall)
                results[case]["cpu"].append(cpu)
    return results


def modules_check(python: str, env: dict[str, str], cwd: str) -> dict:
    script = [python, "-c", _MODULES_SCRIPT]
    done = subprocess.run(script, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        sys.exit(f"modules check failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$")


def _parse_importtime(text: str) -> list[tuple[int, int, int, str]]:
    """(self µs, cumulative µs, depth, module) per line, in the order printed (children first)."""
    rows = []
    for line in text.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            rows.append((int(match[1]), int(match[2]), len(match[3]) // 2, match[4]))
    return rows


def importtime_diff(cases: Commands) -> tuple[float, list[tuple[str, float, str]], list[tuple[str, float]]]:
    """Modules imported only with llmcost enabled: summed self ms, the outermost ones, the slowest ones.

    Each outermost module comes with its cumulative ms and the module that imported it (its
    parent in the importtime tree), so the line that pulls a heavy dependency in can be
    found; the slowest ones come with their own (self) ms.
    """
    texts = {}
    for case in ("disabled", "enabled"):
        cmd, env, cwd = cases[case]
        profiled = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
        done = subprocess.run(cmd, env=profiled, cwd=cwd, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        texts[case] = done.stderr
    seen_disabled = {row[3] for row in _parse_importtime(texts["disabled"])}
    rows = _parse_importtime(texts["enabled"])
    extra = {row[3] for row in rows} - seen_disabled
    # importtime prints a module after everything it imports: its parent is the next line less indented.
    parent: list[int | None] = [None] * len(rows)
    stack: list[int] = []  # indices still waiting for their parent
    for index, (_, _, depth, _) in enumerate(rows):
        while stack and rows[stack[-1]][2] > depth:
            parent[stack.pop()] = index
        stack.append(index)
    own = sorted(((row[3], row[0] / 1000) for row in rows if row[3] in extra), key=lambda item: -item[1])
    outermost = []
    for index, (_, cumulative, _, name) in enumerate(rows):
        up = parent[index]
        if name in extra and (up is None or rows[up][3] not in extra):
            outermost.append((name, cumulative / 1000, rows[up][3] if up is not None else "(top level)"))
    outermost.sort(key=lambda item: -item[1])
    return sum(ms for _, ms in own), outermost, own


def _fmt(seconds: float) -> str:
    return f"{seconds:.3f}"


def report(results: dict[str, dict[str, list[float]]]) -> tuple[float, float]:
    """Print the tables; return otel-llmcost's added seconds: (median wall, median CPU)."""
    med = {case: statistics.median(results[case]["wall"]) for case in CASES}
    low = {case: min(results[case]["wall"]) for case in CASES}
    cpu = {case: statistics.median(results[case]["cpu"]) for case in CASES}
    print("| case | wall min s | wall median s | CPU median s |")
    print("|---|---|---|---|")
    for case in CASES:
        print(f"| {LABELS[case]} | {_fmt(low[case])} | {_fmt(med[case])} | {_fmt(cpu[case])} |")
    print()
    print("| share | wall median s | wall min s | CPU median s |")
    print("|---|---|---|---|")
    shares = (
        ("otel-llmcost added (enabled - disabled)", "enabled", "disabled"),
        ("OpenTelemetry's own (disabled - bare)", "disabled", "bare"),
        ("total added (enabled - bare)", "enabled", "bare"),
    )
    for label, a, b in shares:
        print(f"| {label} | {med[a] - med[b]:+.3f} | {low[a] - low[b]:+.3f} | {cpu[a] - cpu[b]:+.3f} |")
    print()
    print(
        f"ratio instrumented/bare: {med['enabled'] / med['bare']:.2f}x (median wall), "
        f"{low['enabled'] / low['bare']:.2f}x (min wall), {cpu['enabled'] / cpu['bare']:.2f}x (median CPU)"
    )
    return med["enabled"] - med["disabled"], cpu["enabled"] - cpu["disabled"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="a venv's interpreter (default: this one)")
    parser.add_argument("--quick", action="store_true", help="3 rounds, for CI")
    parser.add_argument("--runs", type=int, help="rounds (default 31, or 3 with --quick; odd: the median is one run)")
    parser.add_argument("--max-added-s", type=float, default=0.3, help="budget for otel-llmcost's added time (s)")
    parser.add_argument(
        "--budget-on",
        choices=("wall", "cpu"),
        default="wall",
        help="which median the budget applies to: wall, or CPU (steadier on a loaded machine: the CI guard)",
    )
    parser.add_argument("--no-importtime", action="store_true", help="skip the PYTHONPROFILEIMPORTTIME breakdown")
    args = parser.parse_args()
    # Not resolved: a venv's bin/python is a symlink to the base interpreter, and only the
    # venv path makes Python pick up the venv's site-packages.
    python = os.path.abspath(args.python)
    runs = args.runs or (3 if args.quick else 31)

    with tempfile.TemporaryDirectory(prefix="llmcost-startup-") as scratch:
        cwd = os.path.join(scratch, "cwd")
        os.mkdir(cwd)
        env = child_env(os.path.join(scratch, "pycache"))
        cases = commands(python, env, cwd)
        # These runs come first: they also compile every module the timed runs import.
        modules = modules_check(python, env, cwd)
        profile = None if args.no_importtime else importtime_diff(cases)
        # The full run always takes a warm-up round; --quick skips it when the runs above compiled everything.
        warmup = 0 if args.quick and profile is not None else 1

        installed = modules["installed"]
        version, location = modules["otel_llmcost"]
        print(f"interpreter: {python} (Python {modules['python']}), otel-llmcost {version} from {location}")
        print("installed: " + ", ".join(f"{WATCHED[m]} {installed[m] or '-'}" for m in WATCHED))
        print(f"app: `{APP}`; {runs} runs per case, interleaved round-robin, after {warmup} warm-up round(s)")
        print()
        started = time.perf_counter()
        added_wall, added_cpu = report(measure(cases, runs, warmup))
        added = added_cpu if args.budget_on == "cpu" else added_wall
        print(f"({time.perf_counter() - started:.0f} s)")
    print()

    print("modules loaded in a fresh process (of " + ", ".join(WATCHED) + "):")
    print(f"- after LLMCostInstrumentor().instrument(): {modules['after_instrument']}")
    print(f"- after the app's `{APP}`: {modules['after_app']}")
    leaked = [m for m in MUST_BE_ABSENT if m in modules["after_app"]]
    print(f"anthropic and google.genai not imported: {'no: ' + ', '.join(leaked) if leaked else 'yes'}")

    if profile is not None:
        self_ms, outermost, own = profile
        print()
        print(
            f"imported only with llmcost enabled (PYTHONPROFILEIMPORTTIME, one run each): {len(own)} modules, "
            f"{self_ms:.0f} ms of import time (self, summed; inflated by the profiling)"
        )
        if outermost:
            print()
            print("| outermost module | cumulative ms | imported by |")
            print("|---|---|---|")
            for name, cumulative, by in outermost[:10]:
                print(f"| {name} | {cumulative:.1f} | {by} |")
            print()
            print("| slowest module | self ms |")
            print("|---|---|")
            for name, ms in own[:10]:
                print(f"| {name} | {ms:.1f} |")
        print()

    status = 0
    if leaked:
        print(f"FAIL: instrument() imported {', '.join(leaked)}, which the app does not use")
        status = 1
    measured = f"otel-llmcost added {added:.3f} s (median {args.budget_on})"
    if added > args.max_added_s:
        print(f"FAIL: {measured}, over the budget of {args.max_added_s} s")
        status = 1
    else:
        print(f"{measured}, within the budget of {args.max_added_s} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
