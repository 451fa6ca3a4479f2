"""Config files (YAML or JSON) read with their line numbers and validated strictly.

A config file is a promise about money (budgets, prices), so a mistake in one must be
reported where it is, not guessed around: every problem becomes one line
``FILE:LINE: key.path: message`` and all of them are collected before anything is
raised, so one run of ``otel-llmcost ... check FILE`` lists every fix to make.

Why PyYAML's composer rather than ``yaml.safe_load``: the node tree keeps a mark
(line) for every key and value, which a loaded dict has lost. JSON is read by the same
composer (a JSON document is a YAML flow document), so both formats get lines.

Why scalars are constructed one at a time: an unquoted value that YAML resolves to a
type it cannot build (``effective_from: 2026-13-45`` is resolved as a date, then fails
to become one) must be an error at its line, not an exception out of the whole load.

:func:`validate` checks a tree against a dataclass by introspection (its fields and
their type hints), so a field added to the dataclass is validated with no change here.
Range rules that types cannot express are a callback of the caller's
(:data:`FieldCheck`). This module is a leaf: it imports nothing of the package.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Union

__all__ = [
    "INVALID",
    "ConfigFileError",
    "Node",
    "Problems",
    "check_fields",
    "closest",
    "describe",
    "nearest",
    "one_of",
    "parse_text",
    "read_file",
    "validate",
]

# Deeper than any real config file; guards the recursive walk against hostile input.
MAX_DEPTH = 64


class ConfigFileError(ValueError):
    """A config file that cannot be used; ``errors`` are ``FILE:LINE: key.path: message`` lines."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class _Invalid:
    """A value already reported as an error: validation skips it (no second message)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()


@dataclass
class Node:
    """One value of the file: a scalar, ``dict[str, Node]`` or ``list[Node]``, and its line.

    ``line`` is where a reader looks for it: the key's line for a mapping value (the
    value of ``budgets:`` starts on the next line, the mistake is named on this one).
    """

    value: Any
    line: int

    def plain(self) -> Any:
        """The value as ``yaml.safe_load`` would have returned it (dicts, lists, scalars)."""
        if isinstance(self.value, dict):
            return {key: node.plain() for key, node in self.value.items()}
        if isinstance(self.value, list):
            return [node.plain() for node in self.value]
        return self.value


class Problems:
    """The errors of one file, each formatted ``FILE:LINE: key.path: message``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._found: list[tuple[int, int, str]] = []  # (line, order found, text)

    @property
    def errors(self) -> list[str]:
        """In file order (then in the order found), as a reader fixes them."""
        return [text for _, _, text in sorted(self._found)]

    def __len__(self) -> int:
        return len(self._found)

    def add(self, line: int, path: str, message: str) -> None:
        where = f"{self.name}:{line}"
        self._found.append((line, len(self._found), f"{where}: {path}: {message}" if path else f"{where}: {message}"))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ConfigFileError(self.errors)


# --- reading ---------------------------------------------------------------------------------


def read_file(path: str | os.PathLike[str]) -> tuple[Node | None, Problems]:
    """The file's tree (None when empty) and the problems found reading it.

    Errors name the path as given, the way compilers do, so an editor can jump to it.
    A file that cannot be read or parsed at all raises :class:`ConfigFileError`.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigFileError([f"{name}:1: not UTF-8 text"]) from None
    except OSError as exc:
        raise ConfigFileError([f"{name}: cannot read: {exc.strerror or exc}"]) from None
    return parse_text(text, name)


def parse_text(text: str, name: str) -> tuple[Node | None, Problems]:
    """Like :func:`read_file`, for text already read (``name`` is used in the errors)."""
    import yaml

    problems = Problems(name)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigFileError([f"{name}:{line}: not valid YAML or JSON: {problem}"]) from None
    except RecursionError:
        raise ConfigFileError([f"{name}:1: not valid YAML or JSON: nested too deeply"]) from None
    if root is None:
        return None, problems
    return _Reader(problems).node(root, "", root.start_mark.line + 1, 0), problems


class _Reader:
    def __init__(self, problems: Problems) -> None:
        import yaml

        self.yaml = yaml
        self.problems = problems
        self.loader = yaml.SafeLoader("")  # only its constructors are used, one scalar at a time

    def node(self, node: Any, path: str, line: int, depth: int) -> Node:
        if depth > MAX_DEPTH:
            self.problems.add(line, "", f"nested more than {MAX_DEPTH} levels deep")  # the path would be as long
            return Node(INVALID, line)
        if isinstance(node, self.yaml.MappingNode):
            return Node(self.mapping(node, path, depth), line)
        if isinstance(node, self.yaml.SequenceNode):
            items = [
                self.node(item, f"{path}[{index}]", item.start_mark.line + 1, depth + 1)
                for index, item in enumerate(node.value)
            ]
            return Node(items, line)
        return Node(self.scalar(node, path, line), line)

    def mapping(self, node: Any, path: str, depth: int) -> dict[str, Node]:
        try:
            self.loader.flatten_mapping(node)  # YAML merge keys (<<: *defaults), as safe_load does
        except self.yaml.YAMLError as exc:
            self.problems.add(node.start_mark.line + 1, path, f"invalid merge: {getattr(exc, 'problem', exc)}")
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            key = key_node.value if isinstance(key_node, self.yaml.ScalarNode) else None
            if not isinstance(key, str) or key_node.tag != "tag:yaml.org,2002:str":
                shown = key if isinstance(key, str) else "a " + type(key_node).__name__.replace("Node", "").lower()
                self.problems.add(line, path, f"keys must be text, got {shown}")
                continue
            child = f"{path}.{key}" if path else key
            if key in out:
                self.problems.add(line, child, f"duplicate key (first on line {out[key].line})")
                continue
            out[key] = self.node(value_node, child, line, depth + 1)
        return out

    def scalar(self, node: Any, path: str, line: int) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except Exception as exc:  # a bad date, an unknown !tag: that value is wrong, not the file
            reason = getattr(exc, "problem", None) or str(exc)
            self.problems.add(line, path, f"invalid value {node.value!r}: {reason}")
            return INVALID


# --- describing and suggesting ----------------------------------------------------------------


def describe(value: Any) -> str:
    """A value as the message shows it: ``the string 'false'``, ``a list``, ``3``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime | date):
        return f"the date {value.isoformat()}"
    return repr(value)


def nearest(word: str, choices: Sequence[str]) -> str | None:
    """The choice ``word`` was most likely meant to be, or None when none is near."""
    found = difflib.get_close_matches(word, list(choices), n=1)
    return found[0] if found else None


def closest(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest choice, or ``""`` when none is near."""
    found = nearest(word, choices)
    return f" (did you mean {found!r}?)" if found else ""


# --- validating against a dataclass ---------------------------------------------------------------

# (the dataclass, the field's name, its value as written) -> an error message, or None when it is fine.
FieldCheck = Callable[[type, str, Any], "str | None"]


def check_fields(
    node: Node,
    path: str,
    allowed: Sequence[str],
    problems: Problems,
) -> dict[str, Node] | None:
    """The mapping of ``node``, with every key outside ``allowed`` reported; None if not a mapping."""
    if not isinstance(node.value, dict):
        if node.value is not INVALID:
            problems.add(node.line, path, f"expected a mapping, got {describe(node.value)}")
        return None
    for key, child in node.value.items():
        if key not in allowed:
            problems.add(child.line, _join(path, key), "unknown key" + closest(key, allowed))
    return node.value


def validate(node: Node, cls: type, problems: Problems, *, path: str = "", check: FieldCheck | None = None) -> Any:
    """The plain data of ``node`` (as ``yaml.safe_load`` gives it) once it fits dataclass ``cls``;
    every misfit is added to ``problems`` (then the return value is not to be used).

    Each field's value must match its type hint: ``str``, ``int`` (not a bool), ``float``
    (finite; an int is fine), ``bool`` (a YAML boolean, never the string "false"),
    ``X | None``, ``Literal[...]``, ``tuple``/``list`` of any of these, ``dict[str, X]``
    and nested dataclasses. Required fields (no default) must be present. When the
    fields fit, the dataclass is built once so that its own ``__post_init__`` checks
    report at the entry's line too.
    """
    return _Validator(problems, check).dataclass(node, cls, path)[0]


class _Validator:
    def __init__(self, problems: Problems, check: FieldCheck | None) -> None:
        self.problems = problems
        self.check = check

    def dataclass(self, node: Node, cls: type, path: str) -> tuple[Any, Any]:
        """(plain data, the built dataclass or INVALID)."""
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        mapping = check_fields(node, path, list(fields), self.problems)
        if mapping is None:
            return INVALID, INVALID
        hints = typing.get_type_hints(cls)
        # A misspelt key already says "did you mean 'limit_usd'?": not also "missing limit_usd".
        meant = {nearest(key, list(fields)) for key in mapping if key not in fields}
        plain: dict[str, Any] = {}
        built: dict[str, Any] = {}
        ok = True
        for name, field in fields.items():
            child = mapping.get(name)
            if child is None:
                if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                    if name not in meant:
                        self.problems.add(node.line, path, f"missing required key {name!r}")
                    ok = False
                continue
            before = len(self.problems)
            plain[name], built[name] = self.value(child, hints[name], _join(path, name))
            if len(self.problems) == before and self.check is not None and plain[name] is not None:
                message = self.check(cls, name, plain[name])
                if message:
                    self.problems.add(child.line, _join(path, name), message)
            ok = ok and len(self.problems) == before
        if not ok or len(mapping) != len(plain):
            return plain, INVALID
        return plain, self._build(cls, built, node, path)

    def _build(self, cls: type, built: dict[str, Any], node: Node, path: str) -> Any:
        # The dataclass's own checks (__post_init__) speak ValueError; a TypeError means the
        # raw form is not what its constructor takes directly, which the caller's loader
        # handles, so it is not reported here.
        try:
            return cls(**built)
        except ValueError as exc:
            self.problems.add(node.line, path, str(exc))
        except TypeError:
            pass
        return INVALID

    def value(self, node: Node, hint: Any, path: str) -> tuple[Any, Any]:
        """(plain, built) of one value against one type hint."""
        value = node.value
        if value is INVALID:
            return INVALID, INVALID
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin in (Union, types.UnionType):
            return self._union(node, args, path)
        if origin is Literal:
            if value in args and type(value) in {type(a) for a in args}:
                return value, value
            return self._fail(node, path, _one_of(args, value))
        if origin in (tuple, list, Sequence) or hint in (tuple, list):
            return self._sequence(node, args, path, tuple if origin is tuple or hint is tuple else list)
        if origin in (dict, Mapping) or hint is dict:
            return self._mapping(node, args, path)
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            return self.dataclass(node, hint, path)
        return self._scalar(node, hint, path)

    def _union(self, node: Node, args: tuple[Any, ...], path: str) -> tuple[Any, Any]:
        if node.value is None and type(None) in args:
            return None, None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return self.value(node, options[0], path)
        for option in options:  # the first type that takes the value without an error
            trial = _Validator(Problems(""), self.check)
            result = trial.value(node, option, path)
            if not len(trial.problems):
                return result
        return self.value(node, options[0], path)

    def _sequence(self, node: Node, args: tuple[Any, ...], path: str, kind: type) -> tuple[Any, Any]:
        if not isinstance(node.value, list):
            return self._fail(node, path, f"expected a list, got {describe(node.value)}")
        if (len(args) == 2 and args[1] is Ellipsis) or len(args) == 1:
            item_hints = [args[0]] * len(node.value)
        elif args:
            if len(args) != len(node.value):
                return self._fail(node, path, f"expected a list of {len(args)} items, got {len(node.value)}")
            item_hints = list(args)
        else:
            item_hints = [Any] * len(node.value)
        items = zip(node.value, item_hints, strict=True)  # equal lengths: checked above
        pairs = [self.value(item, hint, f"{path}[{i}]") for i, (item, hint) in enumerate(items)]
        return [p for p, _ in pairs], kind(b for _, b in pairs)

    def _mapping(self, node: Node, args: tuple[Any, ...], path: str) -> tuple[Any, Any]:
        if not isinstance(node.value, dict):
            return self._fail(node, path, f"expected a mapping, got {describe(node.value)}")
        value_hint = args[1] if len(args) == 2 else Any
        pairs = {key: self.value(child, value_hint, _join(path, key)) for key, child in node.value.items()}
        return {k: p for k, (p, _) in pairs.items()}, {k: b for k, (_, b) in pairs.items()}

    def _scalar(self, node: Node, hint: Any, path: str) -> tuple[Any, Any]:
        value = node.value
        if hint is Any or hint is object:
            plain = node.plain()
            return plain, plain
        if hint is bool:
            if isinstance(value, bool):
                return value, value
            return self._fail(node, path, f"expected true or false, got {describe(value)}")
        if hint is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value, value
            return self._fail(node, path, f"expected a whole number, got {describe(value)}")
        if hint is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                if math.isfinite(value):
                    return value, float(value)
                return self._fail(node, path, f"expected a finite number, got {describe(value)}")
            return self._fail(node, path, f"expected a number, got {describe(value)}")
        if hint is str:
            if isinstance(value, str):
                return value, value
            return self._fail(node, path, f"expected text, got {describe(value)} (quote it)")
        if hint is date:
            return self._date(node, path)
        if isinstance(hint, type) and not isinstance(value, hint):
            return self._fail(node, path, f"expected {hint.__name__}, got {describe(value)}")
        return value, value

    def _date(self, node: Node, path: str) -> tuple[Any, Any]:
        value = node.value
        if isinstance(value, datetime):
            return value, value.date()
        if isinstance(value, date):
            return value, value
        if isinstance(value, str):
            try:
                return value, date.fromisoformat(value.strip())
            except ValueError:
                pass
        return self._fail(node, path, f"expected a date like 2026-07-01, got {describe(value)}")

    def _fail(self, node: Node, path: str, message: str) -> tuple[Any, Any]:
        self.problems.add(node.line, path, message)
        return INVALID, INVALID


def _one_of(choices: Sequence[Any], value: Any) -> str:
    names = ", ".join(str(c) for c in choices)
    hint = closest(value, [str(c) for c in choices]) if isinstance(value, str) else ""
    return f"must be one of {names}; got {describe(value)}{hint}"


def one_of(choices: Sequence[str], value: Any) -> str | None:
    """The message for a value outside ``choices`` (with a suggestion), or None when inside."""
    if value in choices:
        return None
    return _one_of(choices, value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
