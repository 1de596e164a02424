"""The REST API's JSON parser and renderer, its pagination and its strict input fields.

REST_FRAMEWORK's settings name the first three. This module must not import ``rest_framework.views``
(nor ``config.api``, which does): ``APIView`` reads those settings when it is defined, so importing it
from here would import this module while it is half-loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import exceptions, pagination, parsers, renderers, serializers
from rest_framework.request import Request

from config import inputs

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


__all__ = [
    "JSONParser",
    "JSONRenderer",
    "LimitOffsetPagination",
    "StrictBooleanField",
    "StrictCharField",
    "StrictFloatField",
    "StrictIntegerField",
]
