"""Supported version ranges of the SDKs and limiters we patch, read back from this
distribution's extras, and the version guard that checks them.

pyproject.toml is the one place a range is written (``[project.optional-dependencies]``:
``openai``, ``anthropic``, ``google``, ``groq``, ``mistral``, ``cohere``, ``ollama``, ``bedrock``,
``litellm``, ``limiters``); the requirements here are derived from the installed metadata,
so the two cannot drift. noxfile.py tests each end of each range. A package installed
outside its range is not patched: one warning, and the others are instrumented.
"""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement

from ..providers import PROVIDERS

DISTRIBUTION = "otel-llmcost"

# Each provider is optional, so ``instrumentation_dependencies`` lists none of them:
# BaseInstrumentor refuses to instrument anything when one listed dependency is
# missing, and a user of one provider has no reason to install the others. The
# per-provider range check in the instrumentor does that job, provider by provider.
_instruments: tuple[str, ...] = ()

# provider key -> (SDK distribution, extra that installs it)
PROVIDER_SDKS: dict[str, tuple[str, str]] = {key: (info.sdk, info.extra) for key, info in PROVIDERS.items()}

# limiter adapter key -> (distribution, extra that installs it); otel_llmcost.signals.limiter_adapters
LIMITER_PACKAGES: dict[str, tuple[str, str]] = {
    "limits": ("limits", "limiters"),
    "slowapi": ("slowapi", "limiters"),
}


def _declared() -> list[Requirement]:
    """This distribution's requirements (none when run from a never-installed source tree)."""
    try:
        lines = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return []
    declared = []
    for line in lines:
        try:
            declared.append(Requirement(line))
        except InvalidRequirement:
            continue
    return declared


def _requirements(packages: dict[str, tuple[str, str]], declared: list[Requirement]) -> dict[str, str]:
    """key -> requirement string, e.g. ``"openai": "openai<4,>=1.47"``.

    Run from a source tree that was never installed (no metadata), the ranges are
    unknown: every installed version is accepted, and a callable that version lacks is
    still skipped one by one when patching.
    """
    found: dict[str, str] = {}
    for requirement in declared:
        for key, (sdk, extra) in packages.items():
            marker = requirement.marker
            if requirement.name == sdk and marker is not None and marker.evaluate({"extra": extra}):
                found[key] = f"{sdk}{requirement.specifier}"
    return {key: found.get(key, sdk) for key, (sdk, _extra) in packages.items()}


_DECLARED = _declared()
PROVIDER_REQUIREMENTS: dict[str, str] = _requirements(PROVIDER_SDKS, _DECLARED)
LIMITER_REQUIREMENTS: dict[str, str] = _requirements(LIMITER_PACKAGES, _DECLARED)


def version(distribution: str) -> str:
    """The installed version of ``distribution`` (raises PackageNotFoundError)."""
    return metadata.version(distribution)


def supported_version(requirement_text: str) -> tuple[bool, str | None]:
    """(installed within the range, installed version or None); never imports the package."""
    requirement = Requirement(requirement_text)
    try:
        installed = version(requirement.name)
    except metadata.PackageNotFoundError:
        return False, None
    return requirement.specifier.contains(installed, prereleases=True), installed
