"""How a profile key is declared and checked: ``setting(...)`` on a section dataclass's field, the ``Field`` derived
from its annotation, and the check of one TOML value against it."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints


@dataclass(frozen=True)
class Field:
    """One allowed key as the TOML parser sees it: its type, default and allowed range (built by ``_schema``)."""

    kind: type | tuple[type, ...]
    default: Any = None
    required: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    why: str = ""
    item: type | None = None  # for lists: the type of every element (low/high/choices apply to elements)
    check: Any = None  # a list of tables: (value) -> the problems with it, each a line

    def describe(self) -> str:
        names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", dict: "a table"}
        if self.check is not None:
            return self.why
        if self.item is not None:
            inner = f"one of {', '.join(repr(c) for c in self.choices)}" if self.choices else names[self.item]
            bounded = self.low is not None and self.high is not None
            bounds = f" in {_num(self.low)}..{_num(self.high)}" if bounded else ""
            return f"a non-empty list, each {inner}{bounds}" + (f" ({self.why})" if self.why else "")
        if self.choices and self.kind is str:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if self.choices:  # a number or one of a few words, e.g. max_length = 128 or "auto"
            kinds = tuple(k for k in kinds if k is not str)
        text = "a number" if self.kind == NUMBER else " or ".join(names.get(k, k.__name__) for k in kinds)
        if self.low is not None and self.high is not None:
            text += f" in {_num(self.low)}..{_num(self.high)}"
        elif self.low is not None:
            text += f" >= {_num(self.low)}"
        if self.choices:
            text += " or " + " or ".join(repr(c) for c in self.choices)
        return text + (f" ({self.why})" if self.why else "")


NUMBER = (int, float)


def _num(value: float) -> str:
    """1..9 and 0..4294967295 as written, 1e-07 as :g writes it."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def setting(
    default: Any = MISSING,
    *,
    low: float | None = None,
    high: float | None = None,
    why: str = "",
    toml: type | tuple[type, ...] | None = None,
    check: Callable[[Any], list[str]] | None = None,
) -> Any:
    """One profile key of a section dataclass: its default (none: the key is required), allowed range and why.

    Its type and choices come from the field's annotation (``SCHEMA`` is built from them): ``float`` takes any
    number, ``Literal["a", "b"]`` one of those strings, ``tuple[int, ...]`` a non-empty TOML list of integers,
    ``int | Literal["auto"]`` either. ``toml`` names the TOML types where they differ from the resolved value's.
    ``check`` validates a list of tables itself (its ``why`` then says what is allowed).
    """
    options = {"low": low, "high": high, "why": why, "toml": toml, "default": default, "check": check}
    return field(default=default, metadata={"setting": options})


class Section:
    """A validated profile section: frozen, typed, defaults filled in."""

    def as_dict(self) -> dict[str, Any]:
        """The plain values as in the TOML (lists, not tuples): for reports and cache keys."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [v.as_dict() if isinstance(v, DeclaredSkip) else v for v in value]
    return value


@dataclass(frozen=True)
class DeclaredSkip:
    """``{ property = "...", reason = "..." }`` in ``[tokenization] skip``: a property that truly cannot apply
    to this profile's tokenizer, and why. Under CI=true only a declared skip may skip."""

    property: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"property": self.property, "reason": self.reason}


def _toml_kind(hint: Any) -> tuple[Any, tuple[str, ...] | None, type | None]:
    """(TOML type(s), allowed words, list element type) that an annotation asks for."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return str, args, None
    if origin is tuple:  # tuple[X, ...]: a TOML list of X
        item, choices, _ = _toml_kind(args[0])
        return list, choices, item
    if origin in (Union, UnionType):  # int | Literal["auto"]
        parts = [_toml_kind(arg) for arg in args]
        return tuple(kind for kind, _, _ in parts), tuple(c for _, cs, _ in parts for c in cs or ()) or None, None
    return NUMBER if hint is float else hint, None, None


def schema_of(section: type[Section]) -> dict[str, Field]:
    """The ``Field`` of every key of a section dataclass, from its annotation and ``setting(...)``."""
    hints = get_type_hints(section)
    specs = {}
    for spec in fields(section):
        options = spec.metadata["setting"]
        kind, choices, item = _toml_kind(hints[spec.name])
        default = options["default"]
        specs[spec.name] = Field(
            options["toml"] or kind,
            None if default is MISSING else _plain(default),
            required=default is MISSING,
            low=options["low"],
            high=options["high"],
            choices=choices,
            why=options["why"],
            item=None if options["check"] else item,
            check=options["check"],
        )
    return specs


def check_value(spec: Field, value: Any) -> str | None:
    if spec.check is not None:
        return "; ".join(spec.check(value)) or None
    if spec.item is not None:
        if not isinstance(value, list) or not value:
            return spec.describe()
        element = Field(spec.item, low=spec.low, high=spec.high, choices=spec.choices)
        return spec.describe() if any(check_value(element, v) for v in value) else None
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
    ok_type = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok_type:
        return spec.describe()
    if spec.choices and isinstance(value, str) and value not in spec.choices:
        return spec.describe()
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (
            value != value
            or (spec.low is not None and value < spec.low)
            or (spec.high is not None and value > spec.high)
        )
    ):
        return spec.describe()
    return None


def did_you_mean(word: str, options: dict[str, Any]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (allowed: {', '.join(options)})"
