"""The profile schema as JSON Schema, generated from ``SCHEMA`` (the same source the loader checks against), so
editors that read schemas for TOML (taplo, Even Better TOML) complete keys and flag a typo or an out-of-range value
as it is typed. ``harness init`` writes it beside the profile and names it in the profile's first line (taplo's
``#:schema`` directive).

``python -m harness.profile.json_schema`` rewrites the packaged copy (``profile.schema.json``);
``tests/test_adoption.py`` fails when it drifts from ``SCHEMA``. The loader stays the judge: it also checks what a
schema cannot say (labels the data lacks, keys that contradict each other, the task's own keys).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.profile.schema import Field
from harness.profile.sections import ARRAY_SCHEMA, ARRAYS, SCHEMA, SECTIONS

PACKAGED = Path(__file__).with_name("profile.schema.json")
DRAFT = "https://json-schema.org/draft/2020-12/schema"
TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object", list: "array"}


def profile_json_schema() -> dict[str, Any]:
    """Every section and key of a profile: types, ranges, choices, defaults and what each is for; no other key."""
    root: dict[str, Any] = {"$schema": DRAFT, "title": "clf-release-harness profile", "type": "object",
                            "additionalProperties": False, "properties": {}}  # fmt: skip
    for name in SCHEMA:  # "gates.baseline" nests under "gates", as TOML reads [gates.baseline]
        parent, *child = name.split(".")
        target = root["properties"].setdefault(parent, _table({}, ""))
        section = _table(SCHEMA[name], _first_line(SECTIONS[name][1].__doc__))
        if child:
            target["properties"][child[0]] = section
        else:
            target["properties"] |= section["properties"]
            target["required"] = section.get("required", [])
            target["description"] = section["description"]
    for name, specs in ARRAY_SCHEMA.items():
        root["properties"][name] = {"type": "array", "items": _table(specs, ""),
                                    "description": _first_line(ARRAYS[name][1].__doc__)}  # fmt: skip
    for section in root["properties"].values():
        if not section.get("required"):
            section.pop("required", None)
    return root


def _table(specs: dict[str, Field], description: str) -> dict[str, Any]:
    table: dict[str, Any] = {"type": "object", "additionalProperties": False, "description": description,
                             "properties": {key: _key(spec) for key, spec in specs.items()}}  # fmt: skip
    table["required"] = [key for key, spec in specs.items() if spec.required]
    return table


def _key(spec: Field) -> dict[str, Any]:
    """One key: ``describe()`` (what the loader says of it) as the description, its default where it has one."""
    found = _value(spec)
    found["description"] = spec.describe()
    if not spec.required and spec.default is not None and spec.default != ():
        found["default"] = list(spec.default) if isinstance(spec.default, tuple) else spec.default
    return found


def _value(spec: Field) -> dict[str, Any]:
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
    bounds = {k: v for k, v in (("minimum", spec.low), ("maximum", spec.high)) if v is not None}
    if spec.item is not None:  # a non-empty list, the bounds and choices on each element
        item = {"enum": list(spec.choices)} if spec.choices else {"type": TYPES[spec.item], **bounds}
        return {"type": "array", "items": item, "minItems": 1}
    if spec.choices and kinds == (str,):
        return {"enum": list(spec.choices)}
    types = sorted({TYPES[k] for k in kinds if k in TYPES and not (spec.choices and k is str)})
    if "integer" in types and "number" in types:
        types.remove("integer")  # every integer is a number
    options: list[dict[str, Any]] = [{"type": t, **(bounds if t in ("integer", "number") else {})} for t in types]
    if spec.choices:  # a number or one of a few words (max_length = 128 or "auto")
        options.append({"enum": list(spec.choices)})
    return options[0] if len(options) == 1 else {"anyOf": options}


def _first_line(doc: str | None) -> str:
    line = (doc or "").strip().splitlines()[0] if doc else ""
    return line.split(": ", 1)[-1] if line.startswith("``[") else line


def schema_text() -> str:
    return json.dumps(profile_json_schema(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    PACKAGED.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {PACKAGED}")
