"""The OpenAPI schema tells the truth about errors: drf-spectacular post-processing.

Every error leaves ``pms_backend.api.problems`` as ``application/problem+json``; the views
name the refusals of their own (400, 404, 409, 422), and this hook documents them with the
``Problem`` schema and adds the answers every API request may get: 401/403 where
credentials are needed, 429 from the rate limits, 400 where the request carries
parameters or a body, 404 for ids and pages, 413/415 for bodies.
"""

from __future__ import annotations

from pms_backend.api.problems import PROBLEM_CONTENT_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "format": "uri", "description": "Identifies the problem."},
        "title": {"type": "string"},
        "status": {"type": "integer", "description": "The HTTP status code."},
        "detail": {"type": "string", "description": "What went wrong, for people."},
        "code": {"type": "string", "description": "Stable, machine-readable code."},
        "errors": {
            "type": "object",
            "description": "Field (dotted path) → messages, for invalid input.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "lines": {
            "type": "array",
            "description": "Order or movement lines refused (`insufficient_stock`, "
            "`product_unavailable`, `stock_limit_exceeded`).",
            "items": {"type": "object", "additionalProperties": True},
        },
        "current_status": {
            "type": "string",
            "description": "The status that forbade the transition (`invalid_transition`).",
        },
    },
    "required": ["type", "title", "status", "detail", "code"],
    "additionalProperties": True,
}

DESCRIPTIONS = {
    "400": "Invalid request: `errors` names each field.",
    "401": "No credentials, or credentials that are not valid.",
    "403": "The credentials lack the scope this operation needs.",
    "404": "No such object (or one the credentials may not see), or no such page.",
    "409": "Refused in the object's current state.",
    "413": "The request body is too large.",
    "415": "The request body is not JSON.",
    "422": "The idempotency key was used with another request.",
    "429": "Rate limited: retry after `Retry-After` seconds.",
}

RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds to wait before trying again.",
    }
}


def _problem_response(status: str, current: dict | None) -> dict:
    description = (current or {}).get("description") or DESCRIPTIONS.get(status, "Error.")
    if description == "problem+json error":  # the views' placeholder
        description = DESCRIPTIONS.get(status, "Error.")
    response = {
        "description": description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}},
    }
    if status == "429":
        response["headers"] = RETRY_AFTER
    return response


def _is_public(operation: dict) -> bool:
    return not any(requirement for requirement in operation.get("security") or [])


def problem_responses(result, generator, request, public):
    """POSTPROCESSING_HOOKS entry: problem+json error responses on every API operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(_error_statuses(operation, responses)):
                responses[status] = _problem_response(status, responses.get(status))
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    _describe_query_parameter(parameter)
    return result


def _error_statuses(operation: dict, responses: dict) -> set[str]:
    """The error statuses an operation can answer: from its security, parameters and body,
    and those it declares itself."""
    parameters = operation.get("parameters", [])
    body = "requestBody" in operation
    statuses = {"429"}
    if not _is_public(operation):
        statuses |= {"401", "403"}
    if body or any(p.get("in") in ("query", "header") for p in parameters):
        statuses.add("400")
    if any(p.get("in") == "path" or p.get("name") == "page" for p in parameters):
        statuses.add("404")
    if body:
        statuses |= {"413", "415"}
    statuses |= {status for status in responses if status[:1] in "45"}
    return statuses


def _describe_query_parameter(parameter: dict) -> None:
    name, schema = parameter.get("name"), parameter.get("schema", {})
    # A filter sent empty (``?status=``) is no filter: django-filter, DRF's search and
    # ordering, and the page number all read it as absent. Not so the page size.
    if not parameter.get("required") and name != "page_size":
        parameter["allowEmptyValue"] = True
    # Django's form fields refuse NUL in text (a 400); DRF's ordering just ignores it.
    if (
        schema.get("type") == "string"
        and not ({"enum", "format", "pattern"} & schema.keys())
        and name != "ordering"
    ):
        schema["pattern"] = "^[^\\x00]*$"
