"""``docs/config.md``, generated from the config models: ``python -m ops config-doc``.

Every key's type, default, bounds and description come from the pydantic models of
``stacks/regional_config.py`` and ``stacks/fleet_config.py`` (and the component
settings they compose) through
``model_json_schema()``; defaults made by a factory are read from the model itself.
``tests/test_configdoc.py`` fails when the committed file differs from what this renders,
so the reference cannot go stale.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from stacks.config import PROJECT, REQUIRED_SECRETS, FleetStackConfig, RegionalStackConfig

DOC = Path(__file__).resolve().parent.parent / "docs" / "config.md"

STACKS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("Regional stacks: `sg` (role `primary`) and `eu` (role `fallback`)", RegionalStackConfig),
    ("The fleet stack: `vps` (role `vps-fleet`)", FleetStackConfig),
)

_BOUNDS = (
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "length ≥ {}"),
    ("maxLength", "length ≤ {}"),
    ("minItems", "≥ {} items"),
    ("maxItems", "≤ {} items"),
    ("pattern", "matches `{}`"),
)


def _cell(text: str) -> str:
    text = re.sub(r"\s+", " ", text).replace("``", "`")
    return text.replace("|", "\\|").strip()


def _ref(schema: dict[str, Any]) -> str | None:
    """The model a property holds (directly, optionally, or as items/values)."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for option in schema.get("anyOf", []):
        if name := _ref(option):
            return name
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict) and (name := _ref(schema[key])):
            return name
    return None


def _type(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "$ref" in schema:
        return "object"
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        text = " or ".join(_type(o) for o in options)
        return text + (" or null" if len(options) < len(schema["anyOf"]) else "")
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object":
        values = schema.get("additionalProperties") or next(
            iter((schema.get("patternProperties") or {}).values()), {}
        )
        return f"map of {_type(values)}" if values else "object"
    return str(kind)


def _bounds(schema: dict[str, Any]) -> str:
    found = [text.format(schema[key]) for key, text in _BOUNDS if key in schema]
    for option in schema.get("anyOf", []):
        if option.get("type") != "null" and (inner := _bounds(option)):
            found.append(inner)
    if isinstance(schema.get("items"), dict) and (inner := _bounds(schema["items"])):
        found.append(f"each {inner}")
    for pattern in schema.get("patternProperties") or {}:
        found.append(f"keys match `{pattern}`")
    return "; ".join(found)


def _default(model: type[BaseModel], name: str, required: bool, nested: str | None) -> str:
    if required:
        return "**required**"
    field = model.model_fields[name]
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below" if nested else "(object)"
    if value is None:
        return "none"
    if value in ([], {}):
        return "empty"
    return f"`{json.dumps(value, default=str)}`"


def _anchor(path: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", path.lower().replace(".", "").replace(" ", "-"))


def _section(
    model: type[BaseModel],
    schema: dict[str, Any],
    defs: dict[str, Any],
    path: str,
    models: dict[str, type[BaseModel]],
    out: list[str],
) -> None:
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    fields = {f.alias or n: n for n, f in model.model_fields.items()}
    rows, children = [], []
    for key, prop in properties.items():
        nested = _ref(prop)
        name = fields[key]
        full = f"{path}.{key}" if path else key
        if prop.get("type") == "array":
            full += "[]"
        elif prop.get("type") == "object" or "additionalProperties" in prop:
            full += ".NAME"
        shown = f"[`{key}`](#{_anchor(full)})" if nested else f"`{key}`"
        description = model.model_fields[name].description or ""
        default = _default(model, name, key in required, nested)
        rows.append(
            f"| {shown} | {_type(prop)} | {default} | {_bounds(prop)} | {_cell(description)} |"
        )
        if nested:
            children.append((full, models[nested], defs[nested]))
    out += ["| key | type | default | bounds | description |", "|---|---|---|---|---|", *rows]
    for child_path, child, child_schema in children:
        doc = _cell((child.__doc__ or "").split("\n\n")[0])
        out += ["", f"### `{child_path}`", "", doc, ""]
        _section(child, child_schema, defs, child_path.removesuffix("[]"), models, out)


def _models(
    model: type[BaseModel], found: dict[str, type[BaseModel]]
) -> dict[str, type[BaseModel]]:
    """Every model reachable from ``model``, by its schema name."""
    found.setdefault(model.__name__, model)
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            annotation = stack.pop()
            if (
                isinstance(annotation, type)
                and issubclass(annotation, BaseModel)
                and annotation.__name__ not in found
            ):
                _models(annotation, found)
            stack += list(getattr(annotation, "__args__", ()) or ())
    return found


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m ops config-doc` from the config models"
        " (stacks/regional_config.py, stacks/fleet_config.py); do not edit by hand. -->",
        "",
        f"Keys live in `Pulumi.<stack>.yaml` under `{PROJECT}:` (the stack's region under"
        " `aws:region`). Every problem is reported at once, naming the key and the fix,"
        " before any resource is registered. Object keys are camelCase; unknown keys and"
        ' values of the wrong type (`"3"` for a number) are refused.',
    ]
    for title, model in STACKS:
        schema = model.model_json_schema(by_alias=True)
        out += ["", f"## {title}", "", _cell(model.__doc__ or ""), ""]
        _section(model, schema, schema.get("$defs", {}), "", _models(model, {}), out)
    out += [
        "",
        "## Secrets the program requires",
        "",
        "Set each with `pulumi config set --secret KEY VALUE`; `ops plan` uses a placeholder.",
        "",
        "| role | keys |",
        "|---|---|",
        *(
            f"| `{role}` | {', '.join(f'`{k}`' for k in keys) or 'none'} |"
            for role, keys in sorted(REQUIRED_SECRETS.items())
        ),
    ]
    return "\n".join(out) + "\n"
