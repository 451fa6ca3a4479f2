"""Supported provider SDK ranges, read back from this distribution's extras.

pyproject.toml is the one place a range is written (``[project.optional-dependencies]``:
``openai``, ``anthropic``, ``google``); ``PROVIDER_REQUIREMENTS`` is derived from the
installed metadata, so the two cannot drift. noxfile.py tests each end of each range.

The instrumentor patches a provider only when its SDK is installed within range;
an SDK outside it is skipped with one warning instead of patching what may not
be there.
"""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement

DISTRIBUTION = "otel-llmcost"

# Each provider is optional, so ``instrumentation_dependencies`` lists none of them:
# BaseInstrumentor refuses to instrument anything when one listed dependency is
# missing, and a user of one provider has no reason to install the others. The
# per-provider range check in the instrumentor does that job, provider by provider.
_instruments: tuple[str, ...] = ()

# provider key -> (SDK distribution, extra that installs it)
PROVIDER_SDKS: dict[str, tuple[str, str]] = {
    "openai": ("openai", "openai"),
    "anthropic": ("anthropic", "anthropic"),
    "google_genai": ("google-genai", "google"),
}


# limiter adapter key -> (distribution, extra that installs it); otel_llmcost.limiter_adapters
LIMITER_PACKAGES: dict[str, tuple[str, str]] = {
    "limits": ("limits", "limiters"),
    "slowapi": ("slowapi", "limiters"),
}


def _provider_requirements(packages: dict[str, tuple[str, str]] = PROVIDER_SDKS) -> dict[str, str]:
    """provider key -> requirement string, e.g. ``"openai": "openai<4,>=1.47"``.

    Run from a source tree that was never installed (no metadata), the ranges are
    unknown: every installed SDK version is accepted, and a callable that version
    lacks is still skipped one by one when patching.
    """
    found: dict[str, str] = {}
    try:
        requires = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        requires = []
    for line in requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        for key, (sdk, extra) in packages.items():
            marker = requirement.marker
            if requirement.name == sdk and marker is not None and marker.evaluate({"extra": extra}):
                found[key] = f"{sdk}{requirement.specifier}"
    return {key: found.get(key, sdk) for key, (sdk, _extra) in packages.items()}


PROVIDER_REQUIREMENTS: dict[str, str] = _provider_requirements()
LIMITER_REQUIREMENTS: dict[str, str] = _provider_requirements(LIMITER_PACKAGES)
