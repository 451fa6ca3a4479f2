"""Supported provider SDK ranges (what ``instrumentation_dependencies`` reports).

The instrumentor patches a provider only when its SDK is installed within range;
an SDK outside it is skipped with one warning instead of patching what may not
be there.
"""

from __future__ import annotations

# Each provider is optional: the instrumentor needs none of them to load.
_instruments: tuple[str, ...] = ()

PROVIDER_REQUIREMENTS: dict[str, str] = {
    "openai": "openai >= 1.40, < 4",
    "anthropic": "anthropic >= 0.40, < 3",
    "google_genai": "google-genai >= 1.0, < 4",
}
