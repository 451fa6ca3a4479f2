"""One patch engine for everything otel-llmcost wraps: SDK methods, SDK internals and
the app's rate limiters.

Patches are applied when their module is imported (wrapt post-import hooks; at once
if it already is), so ``instrument()`` imports no SDK the application does not use:
``opentelemetry-instrument python app.py`` costs an app that only uses openai nothing
for anthropic or google-genai. ``remove_all()`` restores every patched attribute
exactly: the original object goes back where it was, and an attribute that was
inherited (not in the class's own ``__dict__``) is deleted again rather than left as a
copy on the subclass. A method one library version lacks is skipped quietly and the
rest is patched.

wrapt has no way to unregister a post-import hook, so one hook per module name is
registered for the life of the process and hands the module to whichever engines
still have patches waiting for it.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import wrapt

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Patch:
    """Wrap ``module``'s ``attribute`` ("Class.method") with a wrapt-style ``wrapper``."""

    module: str
    attribute: str
    wrapper: Callable[..., Any]
    # Skip the attribute when the class only inherits it (its parent is patched on its own).
    own_only: bool = False


_engines: weakref.WeakSet[PatchEngine] = weakref.WeakSet()
_hooked: set[str] = set()
_hooked_lock = threading.Lock()


def _module_imported(module: ModuleType) -> None:
    for engine in list(_engines):
        engine.module_imported(module)


def _when_imported(module_name: str) -> None:
    with _hooked_lock:
        if module_name in _hooked:
            return
        _hooked.add(module_name)
    wrapt.register_post_import_hook(_module_imported, module_name)


class PatchEngine:
    """Applies patches as their modules are imported and removes them all on request."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._pending: dict[str, list[Patch]] = {}
        # (patch, owner, name, our wrapper, whether the owner had its own attribute before)
        self._applied: list[tuple[Patch, Any, str, Any, bool]] = []
        _engines.add(self)

    @property
    def applied(self) -> list[tuple[str, str]]:
        """(module, attribute) of every patch applied so far."""
        with self._lock:
            return [(patch.module, patch.attribute) for patch, *_ in self._applied]

    def add(self, patches: Iterable[Patch]) -> None:
        """Patch now what is imported, and the rest when its module is."""
        waiting: list[str] = []
        with self._lock:
            for patch in patches:
                self._pending.setdefault(patch.module, []).append(patch)
                if patch.module not in waiting:
                    waiting.append(patch.module)
        for module_name in waiting:
            module = sys.modules.get(module_name)
            if module is not None:
                self.module_imported(module)
            _when_imported(module_name)

    def module_imported(self, module: ModuleType) -> None:
        with self._lock:
            patches = self._pending.pop(module.__name__, None)
            if patches:
                for patch in patches:
                    self._apply(module, patch)

    def _apply(self, module: ModuleType, patch: Patch) -> None:
        *path, name = patch.attribute.split(".")
        owner: Any = module
        try:
            for part in path:
                owner = getattr(owner, part)
            own = name in vars(owner)
            if patch.own_only and not own:
                return
            if not own and not hasattr(owner, name):
                raise AttributeError(f"{patch.attribute} not found")
            wrapper = wrapt.wrap_function_wrapper(owner, name, patch.wrapper)
        except (AttributeError, TypeError) as exc:
            # A method this library version does not have: skip it, keep the rest.
            logger.debug("otel-llmcost: cannot patch %s.%s: %s", patch.module, patch.attribute, exc)
            return
        self._applied.append((patch, owner, name, wrapper, own))

    def remove_all(self) -> None:
        """Restore every patched attribute and forget the patches still waiting."""
        with self._lock:
            self._pending.clear()
            while self._applied:
                _, owner, name, wrapper, own = self._applied.pop()
                try:
                    if vars(owner).get(name) is not wrapper:
                        continue  # replaced by someone else since: leave it alone
                    if own:
                        setattr(owner, name, wrapper.__wrapped__)
                    else:
                        delattr(owner, name)
                except Exception as exc:  # pragma: no cover - undoing a patch we made
                    logger.debug("otel-llmcost: cannot unpatch %s.%s: %s", owner, name, exc)
