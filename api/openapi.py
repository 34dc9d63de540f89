"""The OpenAPI document describes the error body the API really sends (api/errors.py): FastAPI's own
HTTPValidationError is replaced by ErrorBody on every 422, and every other declared error status gets
ErrorBody too, so that a generated client parses what it receives."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema

from spinekg.api.schemas import ErrorBody

REF_TEMPLATE = "#/components/schemas/{model}"
ERROR_REF = REF_TEMPLATE.format(model=ErrorBody.__name__)
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")


def describe_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``schema`` (an app.openapi() document) in place and return it."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    _, defs = models_json_schema([(ErrorBody, "serialization")], ref_template=REF_TEMPLATE)
    components.update(defs.get("$defs", {}))
    for item in schema.get("paths", {}).values():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if operation.get("parameters") or operation.get("requestBody"):
                responses.setdefault("422", {"description": "Validation Error"})
            for status, response in responses.items():
                if str(status)[0] in "45":
                    response.setdefault("description", "Error")
                    response["content"] = {"application/json": {"schema": {"$ref": ERROR_REF}}}
    text = repr(schema["paths"])
    for name in FASTAPI_ERROR_SCHEMAS:
        if REF_TEMPLATE.format(model=name) not in text:
            components.pop(name, None)
    return schema


def install(app: FastAPI) -> None:
    """Post-process the generated document once, when it is first asked for."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
