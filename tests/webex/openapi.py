"""The vendored official Webex OpenAPI file, as JSON Schema: validators and dereferenced schemas.

Shared by the simulator's conformance tests and the spec-driven random server.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "webex-meeting.openapi.json"
SPEC_URI = "urn:webex-meeting-openapi"


# Every error answer's body, as the spec describes it (and the trackingId shape Webex sends).
ERROR_SCHEMA = {
    "type": "object",
    "required": ["message", "errors", "trackingId"],
    "additionalProperties": False,
    "properties": {
        "message": {"type": "string", "minLength": 1},
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["description"],
                "properties": {"description": {"type": "string", "minLength": 1}},
            },
        },
        "trackingId": {"type": "string", "pattern": "^ROUTER_[0-9A-F-]+$"},
    },
}


@functools.cache
def load_spec() -> dict[str, Any]:
    """The official Webex meetings OpenAPI document (read once; treat as read-only)."""
    data: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return data


def openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects as draft-4 JSON Schema: ``nullable`` becomes a null type.

    ``example`` and other OpenAPI-only keys are annotations a validator ignores; nothing is
    loosened.
    """
    if isinstance(node, list):
        return [openapi_to_jsonschema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]
    return out


def strict(node: Any) -> Any:
    """A copy where every object schema with declared properties rejects undeclared ones."""
    if isinstance(node, list):
        return [strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items()}
    if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


def response_pointer(path: str, status: str, content_type: str) -> str:
    """JSON pointer to the schema of ``GET path``'s answer with ``status`` and ``content_type``."""

    def esc(part: str) -> str:
        return part.replace("~", "~0").replace("/", "~1")

    return f"/paths/{esc(path)}/get/responses/{status}/content/{esc(content_type)}/schema"


def response_content_type(path: str) -> str:
    """The one content type the spec documents for ``GET path``'s 200 answer."""
    content = load_spec()["paths"][path]["get"]["responses"]["200"]["content"]
    (content_type,) = content
    return str(content_type)


def response_validators(paths: list[str]) -> dict[str, tuple[Draft4Validator, Draft4Validator]]:
    """Per path: validators of the 200 answer (the official schema, and its strict copy)."""
    official = openapi_to_jsonschema(load_spec())
    registry: Registry[Any] = Registry().with_resources(
        [
            (SPEC_URI, Resource.from_contents(official, default_specification=DRAFT4)),
            (
                SPEC_URI + "-strict",
                Resource.from_contents(strict(official), default_specification=DRAFT4),
            ),
        ]
    )
    out = {}
    for path in paths:
        pointer = response_pointer(path, "200", response_content_type(path))
        out[path] = (
            Draft4Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=registry),
            Draft4Validator({"$ref": f"{SPEC_URI}-strict#{pointer}"}, registry=registry),
        )
    return out


def component_schema(name: str) -> dict[str, Any]:
    """``components.schemas[name]`` with every ``$ref`` inlined (a cycle becomes ``{}``), as
    draft-4 JSON Schema without annotations."""
    components = load_spec()["components"]["schemas"]

    def inline(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [inline(v, stack) for v in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = str(node["$ref"]).rsplit("/", 1)[1]
            return {} if ref in stack else inline(components[ref], (*stack, ref))
        return {k: inline(v, stack) for k, v in node.items() if k not in ("example", "description")}

    schema: dict[str, Any] = openapi_to_jsonschema(inline(components[name], (name,)))
    return schema


def documented_statuses(path: str) -> list[int]:
    """The statuses the spec documents for ``GET path``, 200 excluded."""
    responses = load_spec()["paths"][path]["get"]["responses"]
    return sorted(int(s) for s in responses if s != "200")
