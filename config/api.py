"""What every REST endpoint shares: the error shape, the JSON parser and renderer, pagination, strict
input fields and the error responses of the OpenAPI schema.

Services raise Django's ``ValidationError`` or our ``ApplicationError``; the API turns both into
a 4xx with a readable ``detail`` instead of a 500 (HackSoft's approach).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, pagination, parsers, renderers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config import inputs
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


# --- Bodies in, bodies out


class JSONParser(parsers.JSONParser):
    """The API's only body parser: ``config.inputs.json_loads`` (depth, NUL and surrogates refused)."""

    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            return inputs.json_loads(stream.read())
        except inputs.JSONInputError as exc:
            raise exceptions.ParseError(str(exc)) from None


class JSONRenderer(renderers.JSONRenderer):
    """DRF's renderer, except that a lone surrogate stored before input was checked is sent as
    U+FFFD instead of failing the whole response (UTF-8 cannot encode it)."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return super().render(inputs.replace_surrogates(data), accepted_media_type, renderer_context)


# --- Pagination


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """DRF's limit/offset pages with strict parameters: a limit from 1 (above ``max_limit``, the
    page is ``max_limit`` long) and an offset from 0, both whole numbers up to
    ``inputs.QUERY_INT_MAX``; anything else is a 400 naming the parameter, not a silent default."""

    max_limit = 200

    def _param(self, request: Request, name: str, minimum: int, default: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        value = inputs.bounded_int(raw, minimum=minimum)
        if value is None:
            raise exceptions.ValidationError(
                {name: [f"{name} is a whole number from {minimum} to {inputs.QUERY_INT_MAX}, not {raw[:40]!r}."]}
            )
        return value

    def get_limit(self, request: Request) -> int:
        return min(
            self._param(request, self.limit_query_param, 1, self.default_limit or self.max_limit), self.max_limit
        )

    def get_offset(self, request: Request) -> int:
        return self._param(request, self.offset_query_param, 0, 0)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        limit, offset = super().get_schema_operation_parameters(view)
        limit["description"] = (
            f"Number of results to return per page (default {self.default_limit}, at most {self.max_limit})."
        )
        limit["schema"] = {"type": "integer", "minimum": 1, "maximum": inputs.QUERY_INT_MAX}
        offset["schema"] = {"type": "integer", "minimum": 0, "maximum": inputs.QUERY_INT_MAX}
        return [limit, offset]


# --- Strict input fields: DRF's own turn 0 into "0", "yes" into True and "5" into 5, so a body
# that does not match the schema would be accepted. JSON bodies use these instead.


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


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
    "JSONParser",
    "JSONRenderer",
    "LimitOffsetPagination",
    "StrictBooleanField",
    "StrictCharField",
    "StrictFloatField",
    "StrictIntegerField",
    "exception_handler",
    "not_found",
    "schema_error_responses",
    "status",
]
