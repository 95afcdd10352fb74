"""Declaring API operations once: the `operation` decorator registers the Flask route (with
authentication, rate limit and request validation) and records what the OpenAPI 3.1 document at
/api/v1/openapi.json says about it, from the same pydantic models.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from werkzeug.exceptions import UnsupportedMediaType

from app.api import schemas
from app.api.auth import Principal, authenticate
from app.models.types import MAX_ROW_ID

#: Bodies above this are refused with 413 before they are read (a 500-line pick is ~60 KiB).
MAX_BODY_BYTES = 256 * 1024
_PATH_PARAM = re.compile(r"\{(\w+)\}")
_ERROR_TEXT = {
    400: "Malformed request",
    401: "Missing, unknown, revoked or expired bearer token",
    403: "The token lacks the scope, or its user the role",
    404: "Unknown SKU, location or movement",
    409: "Conflict (insufficient stock, idempotency key reused with a different body, duplicate)",
    413: "Request body too large",
    415: "The body is not application/json",
    422: "Validation failed; `errors` lists the fields",
    429: "Rate limit exceeded; retry after `Retry-After` seconds",
}


@dataclass(kw_only=True)
class Operation:
    """What one operation promises: the contract its `operation(...)` keywords declare, then the
    route and the view's docstring."""

    response: type[BaseModel]
    scope: str = "read"
    role: str = "viewer"
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_types: dict[str, type] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    problems: Mapping[int, type[BaseModel]] = field(default_factory=dict)
    method: str = ""
    path: str = ""
    endpoint: str = ""
    summary: str = ""
    description: str = ""
    tag: str = ""


OPERATIONS: list[Operation] = []


def _json(body: Any, status: int) -> Response:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return current_app.response_class(text, status, mimetype="application/json")


def parse_body(model: type[BaseModel]) -> Any:
    """The JSON body validated into `model`. Raises 415, 413 or RequestInvalid (422)."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Send the body as application/json.")
    request.max_content_length = MAX_BODY_BYTES
    try:
        return model.model_validate_json(request.get_data(cache=False) or b"")
    except ValidationError as error:
        raise schemas.RequestInvalid.from_pydantic(error) from None


def parse_query(model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise schemas.RequestInvalid.from_pydantic(error) from None


def writing(role: str, *, status: int = 200, errors: tuple[int, ...] = (409,)) -> dict[str, Any]:
    """The contract of an operation that writes: write scope, the least `role`, and its 409 (short
    stock, a reused key, a duplicate) documented as a ConflictProblem."""
    return {
        "scope": "write",
        "role": role,
        "status": status,
        "errors": errors,
        "problems": {409: schemas.ConflictProblem},
    }


class Rest(str):
    """The type of a path's last parameter that may hold "/" (a serial number from a supplier's
    label): routed with Flask's `path` converter, so "A/1" and "A%2F1" both reach it whole."""


def operation(
    bp: Blueprint, method: str, path: str, **contract: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `view(principal, **path_params, body=..., query=...)` -> dict at `path` (OpenAPI
    syntax, e.g. /items/{sku}); the dict is sent as JSON with `status`. `contract` holds the
    fields of Operation it declares (`response` at least; `scope`, `role`, `body` …)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        module = view.__module__.rsplit(".", 1)[-1]
        name = f"{module}_{view.__name__}"
        summary, _, description = (view.__doc__ or "").strip().partition("\n")
        op = Operation(**contract, method=method.lower(), path=path, endpoint=f"{bp.name}.{name}", tag=module)
        op.summary, op.description = summary.strip(), description.strip()

        @functools.wraps(view)
        def handler(**params: Any) -> Response:
            principal: Principal = authenticate(scope=op.scope, role=op.role)
            if op.body is not None:
                params["body"] = parse_body(op.body)
            if op.query is not None:
                params["query"] = parse_query(op.query)
            return _json(view(principal, **params), op.status)

        from app.api import limit_for

        def flask_rule(match: re.Match[str]) -> str:
            param = match.group(1)
            kind = op.path_types.get(param)
            return f"<int:{param}>" if kind is int else f"<path:{param}>" if kind is Rest else f"<{param}>"

        bp.add_url_rule(_PATH_PARAM.sub(flask_rule, path), name, limit_for(op.scope)(handler), methods=[method])
        OPERATIONS.append(op)
        return view

    return decorate


# ---------------------------------------------------------------- the document


def _problem_response(status: int, ref: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _ERROR_TEXT.get(status, "Error"),
        "content": {"application/problem+json": {"schema": {"$ref": ref}}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}}
    if status == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait"}}
    return response


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in _PATH_PARAM.findall(op.path):
        kind = op.path_types.get(name)
        schema: dict[str, Any] = (
            {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID}
            if kind is int
            else {"type": "string", "minLength": 1}
            if kind is Rest
            else {"type": "string", "minLength": 1, "pattern": r"^[^/]+$"}
        )
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    if op.query is not None:
        query_schema = op.query.model_json_schema(mode="validation")
        required = set(query_schema.get("required", []))
        for name, prop in query_schema["properties"].items():
            prop = {k: v for k, v in prop.items() if k != "title"}
            description = prop.pop("description", None)
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if description:
                param["description"] = description
            params.append(param)
    if op.method == "post":
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Repeat a POST safely: a replay returns the original status and body and writes "
                "nothing; the same key with a different body is a 409.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"^[\x21-\x7e]+$"},
            }
        )
    return params


def _models() -> list[tuple[type[BaseModel], Any]]:
    seen: dict[tuple[type[BaseModel], str], None] = {}
    for op in OPERATIONS:
        seen[(op.response, "serialization")] = None
        if op.body is not None:
            seen[(op.body, "validation")] = None
        for model in op.problems.values():
            seen[(model, "serialization")] = None
    seen[(schemas.Problem, "serialization")] = None
    seen[(schemas.ValidationProblem, "serialization")] = None
    return list(seen)


def build_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every registered operation."""
    refs, top = models_json_schema(_models(), ref_template="#/components/schemas/{model}")
    ref = {key: value["$ref"] for key, value in refs.items()}
    problem_ref = ref[(schemas.Problem, "serialization")]
    validation_ref = ref[(schemas.ValidationProblem, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        statuses = {401, 403, 429, *op.errors}
        if op.body is not None or op.query is not None:
            statuses.add(422)
        if op.body is not None:
            statuses.update({400, 413, 415})
        if op.path_types or "{" in op.path:
            statuses.add(404)
        responses: dict[str, Any] = {
            str(op.status): {
                "description": "OK" if op.status == 200 else "Created",
                "content": {"application/json": {"schema": {"$ref": ref[(op.response, "serialization")]}}},
            }
        }
        for status in sorted(statuses):
            model = op.problems.get(status)
            target = ref[(model, "serialization")] if model else validation_ref if status == 422 else problem_ref
            responses[str(status)] = _problem_response(status, target)
        entry: dict[str, Any] = {
            "operationId": op.endpoint.replace(".", "_"),
            "summary": op.summary,
            "tags": [op.tag],
            "security": [{"bearerAuth": []}],
            "parameters": _parameters(op),
            "responses": responses,
        }
        needs = f"Token scope `{op.scope}`; role `{op.role}` or above."
        entry["description"] = f"{op.description}\n\n{needs}".strip()
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": ref[(op.body, "validation")]}}},
            }
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Inventory (库存管理) API",
            "version": f"1 ({version})",
            "description": "Stock levels, movements and the catalogue for integrators. Quantities are decimal "
            "strings; errors are RFC 9457 problem documents.",
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
