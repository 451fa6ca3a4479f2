"""Compatibility matrix: each end of every supported range, tested against the real SDKs.

One session per combination; each installs exactly the pinned versions below (with
uv if installed, else pip, into its own virtualenv under .nox/) beside this package, then runs the provider suites
against the local fake provider. The default ``python -m pytest`` stays the fast
check against whatever the dev environment has; this is the slow, wide one.

    python -m nox -l                                  # the sessions
    python -m nox                                     # the whole matrix (~80 s, warm cache)
    python -m nox -s "compat(oldest)" "compat(newest)"  # the CI slice (.ci/run)

The supported ranges themselves live in pyproject.toml (extras and dependencies);
``otel_llmcost.package`` reads them back from the installed metadata.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

# uv when it is installed (the dev extra has it: ~2x faster installs), else virtualenv + pip
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.download_python = "never"
nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = False

# The provider suites: every test that drives a real SDK against the fake provider,
# the contract every provider keeps, and the version guards. A suite listed here
# must exist: the session fails naming any that does not (a renamed file is not skipped).
SUITES = (
    "tests/providers/test_contract.py",
    "tests/providers/test_openai.py",
    "tests/providers/test_fuzz_openai.py",
    "tests/providers/test_anthropic.py",
    "tests/providers/test_google_genai.py",
    "tests/providers/test_groq.py",
    "tests/providers/test_mistral.py",
    "tests/providers/test_cohere.py",
    "tests/providers/test_ollama.py",
    "tests/providers/test_bedrock.py",
    # LiteLLM is not in `all`: the combos that pin it (openai1-latest: its oldest end, newest)
    # install it; elsewhere the suite skips (pytest.importorskip).
    "tests/providers/test_litellm.py",
    "tests/providers/test_stream_estimates.py",
    "tests/providers/test_prompt_components.py",
    "tests/providers/test_reported_cost.py",
    "tests/signals/test_attribution.py",
    "tests/instrumentation/test_version_guards.py",
    # Pricing leans on genai-prices' model data (dated prices, variants): the oldest end
    # runs genai-prices 0.1.13 (Python 3.10).
    "tests/pricing/test_pricing.py",
    "tests/pricing/test_pricing_history.py",
)


def missing_suites(suites: tuple[str, ...] = SUITES) -> list[str]:
    """The suites in ``suites`` that are not files (relative to this noxfile's folder)."""
    here = Path(__file__).parent
    return [suite for suite in suites if not (here / suite).is_file()]


SUITE_TOOLS = ("pytest >= 8", "pytest-xdist >= 3.5", "hypothesis >= 6.100", "httpx2 >= 2")


def _otel(api: str, contrib: str) -> tuple[str, ...]:
    """opentelemetry-api/sdk and the contrib packages released with them."""
    return (
        f"opentelemetry-api=={api}",
        f"opentelemetry-sdk=={api}",
        f"opentelemetry-exporter-otlp=={api}",
        f"opentelemetry-instrumentation=={contrib}",
        f"opentelemetry-distro=={contrib}",
    )


OTEL_OLDEST = _otel("1.30.0", "0.51b0")  # first SDK that honours explicit_bucket_boundaries_advisory
OTEL_OLDEST_WRAPT2 = _otel("1.41.0", "0.62b0")  # opentelemetry-instrumentation < 0.62b0 requires wrapt < 2
OTEL_NEWEST = _otel("1.45.2", "0.66b2")

# name -> (python, pins). Every end of every range appears at least once; the
# oldest Python runs the oldest of everything, the newest Python the newest.
COMBOS: dict[str, tuple[str, tuple[str, ...]]] = {
    "oldest": (
        "3.10",
        (
            "openai==1.47.0",  # first release whose _build_request takes retries_taken
            "anthropic==0.43.0",  # first with the beta messages.stream helper the suite patches
            "google-genai==1.51.0",  # 1.46-1.50 close an injected httpx client when the Client is collected
            "groq==0.13.0",  # first with retries_taken in _build_request and no proxies= for httpx 0.28
            "mistralai==1.5.0",  # mistralai.* modules (2.x: mistralai.client.*); no cached count, no close()
            "cohere==5.10.0",  # first whose v2 client has embed; httpx-sse streams, ApiError without headers
            "ollama==0.4.7",  # first that allows httpx 0.28
            "boto3==1.34.116",  # first with Converse / ConverseStream (no cache tokens in its model yet)
            "botocore==1.34.116",
            "wrapt==1.17.0",
            *OTEL_OLDEST,
        ),
    ),
    "openai1-latest": (
        "3.11",
        (
            "openai==1.109.1",
            "anthropic==0.125.0",
            "google-genai==1.75.0",
            # litellm's oldest end lives here, not in "oldest": every litellm >= 1.60 needs
            # openai >= 1.55.3 (oldest pins 1.47.0), and 1.60.0-1.60.2 need httpx < 0.28, which
            # google-genai >= 1.51 does not allow
            "litellm==1.60.4",
            "wrapt==1.17.3",
            *OTEL_NEWEST,
        ),
    ),
    "openai2-latest": (
        "3.11",
        ("openai==2.54.0", "anthropic==1.17.0", "google-genai==2.34.0", "wrapt==2.0.0", *OTEL_OLDEST_WRAPT2),
    ),
    "newest-wrapt1": (
        "3.13",
        ("openai==3.54.0", "anthropic==2.12.0", "google-genai==3.4.0", "wrapt==1.17.3", *OTEL_NEWEST),
    ),
    "newest": (
        "3.13",
        (
            "openai==3.54.0",
            "anthropic==2.12.0",
            "google-genai==3.4.0",
            "groq==1.7.0",
            "mistralai==3.7.0",
            "cohere==7.3.1",
            "ollama==0.6.3",
            "boto3==1.44.8",
            "botocore==1.44.8",
            "litellm==1.110.2",
            "wrapt==2.5.2",
            *OTEL_NEWEST,
        ),
    ),
}


def _interpreter(version: str) -> str:
    """An absolute path to pythonX.Y: pyenv's installs first (its shims refuse
    versions that are not selected), then whatever nox finds on PATH."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for candidate in sorted(root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True):
        return str(candidate)
    return version


# Printed after each install, so the log shows the matrix as it ran.
_REPORTED = (
    "openai",
    "anthropic",
    "google-genai",
    "groq",
    "mistralai",
    "cohere",
    "ollama",
    "boto3",
    "botocore",
    "litellm",
    "wrapt",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation",
    "httpx",
    "httpx2",
    "genai-prices",
)
_REPORT_VERSIONS = (
    "import importlib.metadata as m; print('installed:', *sorted(f'{d.name}=={d.version}' for d in m.distributions()"
    f" if d.name.lower() in {_REPORTED}))"
)


@nox.session
@nox.parametrize(
    ["python", "pins"],
    [(_interpreter(python), pins) for python, pins in COMBOS.values()],
    ids=list(COMBOS),
)
def compat(session: nox.Session, pins: tuple[str, ...]) -> None:
    """Install the pinned SDKs, wrapt and OpenTelemetry, then run the provider suites."""
    missing = missing_suites()
    if missing:
        session.error(f"SUITES lists test files that do not exist: {', '.join(missing)}")
    session.env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # Only what the provider suites import: the test extra also brings web frameworks and
    # their OTel instrumentations, which pin OpenTelemetry on their own release schedule.
    session.install("-e", ".[all]", *SUITE_TOOLS, *pins)
    session.run("python", "-c", _REPORT_VERSIONS)
    session.run("python", "-m", "pytest", "-rs", *SUITES, *session.posargs)
