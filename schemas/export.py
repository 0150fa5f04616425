"""Generate the JSON Schema files in schemas/json from the typed models (the single source)."""

from __future__ import annotations

from pathlib import Path

import orjson

from schemas.events import PUBLISHED_MODELS

SCHEMA_DIR = Path(__file__).with_name("json")


def rendered_schemas() -> dict[str, bytes]:
    out = {}
    for name, model in PUBLISHED_MODELS.items():
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **model.model_json_schema(),
        }
        out[f"{name}.schema.json"] = (
            orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
    return out


def write_schema_files() -> list[Path]:
    SCHEMA_DIR.mkdir(exist_ok=True)
    written = []
    for filename, content in rendered_schemas().items():
        path = SCHEMA_DIR / filename
        path.write_bytes(content)
        written.append(path)
    return written


def check_schema_files() -> list[str]:
    """Names of schema files missing or different from what the models generate."""
    stale = []
    for filename, content in rendered_schemas().items():
        path = SCHEMA_DIR / filename
        if not path.exists() or path.read_bytes() != content:
            stale.append(filename)
    return stale
