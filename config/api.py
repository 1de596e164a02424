"""What every REST endpoint shares: the error shape, the JSON 404 of unknown /api/ paths and the
error responses of the OpenAPI schema (the parser, renderer, pagination and strict fields:
``config.rest``).

Services raise Django's ``ValidationError`` or our ``ApplicationError``; the API turns both into
a 4xx with a readable ``detail`` instead of a 500 (HackSoft's approach).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import ApplicationError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "message_dict"):
            exc = exceptions.ValidationError(detail=exc.message_dict)
        else:
            exc = exceptions.ValidationError(detail={"detail": exc.messages})
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, ApplicationError):
        return Response({"detail": exc.message, **exc.extra}, status=exc.status_code)

    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError) and isinstance(response.data, list):
        response.data = {"detail": response.data}
    return response


def not_found(request: HttpRequest) -> JsonResponse:
    """A path under /api/ that matches no endpoint (``/api/runs/abc/``): a 404 in the API's error
    shape, not Django's HTML page."""
    return JsonResponse({"detail": "Not found."}, status=404)


# --- The error responses of the OpenAPI schema (drf-spectacular postprocessing hook)

ERROR_SCHEMA = {
    "type": "object",
    "description": ("An error: the reason under `detail`, or for invalid fields one list of messages per field name."),
    "properties": {"detail": {}},
    "additionalProperties": {},
}
_ERRORS = {
    "400": "Invalid input: a readable message per field, or under `detail` (malformed or refused JSON too).",
    "401": "No valid credentials: log in or send an API token.",
    "403": "The caller may not do this.",
    "404": "No such object among the caller's.",
}


def schema_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Describe the 4xx answers every operation can give, each with the error body:
    401 (all need credentials), 400 (operations with a body or query parameters) and 404
    (operations with path parameters); a 4xx an operation documents itself keeps its description."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            parameters = {p.get("in") for p in operation.get("parameters", [])}
            codes = {"401"}
            if "requestBody" in operation or "query" in parameters:
                codes.add("400")
            if "path" in parameters:
                codes.add("404")
            responses = operation["responses"]
            for code in codes:
                responses.setdefault(code, {"description": _ERRORS[code]})
            for code, response in responses.items():
                if code.startswith("4"):
                    response.setdefault("content", body)
    return result


__all__ = [
    "exception_handler",
    "not_found",
    "schema_error_responses",
    "status",
]
