"""HTTP tools: one request per call, built from the tool's config and the call's arguments.

``config``: ``method`` (GET, POST, PUT, PATCH, DELETE), ``url_template`` (placeholders ``{name}``
only in the path or query, filled URL-encoded), ``headers`` (plain headers). Secret headers (e.g.
``Authorization``) are stored encrypted on the tool. Arguments not used by the template go to the
query string (GET, DELETE) or the JSON body (POST, PUT, PATCH). Redirects are not followed (a
secret header must not travel to another host); the response is cut at ``MAX_RESPONSE_BYTES``.
"""

from __future__ import annotations

import json
import string
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
from autogen_core import CancellationToken

from tools.kinds import register_kind

if TYPE_CHECKING:
    from tools.runtime import ToolSpec

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_RESPONSE_BYTES = 100_000


def template_fields(url_template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(url_template) if field]


def check_url_template(url_template: str) -> str | None:
    """The reason the template is unsafe or invalid, or ``None``."""
    try:
        fields = template_fields(url_template)
    except ValueError as exc:
        return f"the URL template is malformed: {exc}"
    parts = urlsplit(url_template)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "the URL template must start with http:// or https:// and a host"
    if "{" in parts.netloc or "{" in parts.scheme:
        return "placeholders may appear only in the path or query, never in the host"
    if any(not f.isidentifier() for f in fields):
        return "placeholders must be plain names, e.g. {city}"
    return None


async def read_capped(response: httpx.Response, limit: int) -> bytearray:
    """The body of a streamed response, reading no more than one chunk past ``limit`` bytes."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) > limit:
            break
    return body


def build_request(spec: ToolSpec, arguments: dict[str, Any]) -> tuple[str, str, dict[str, str], dict[str, Any], Any]:
    config = spec.config
    method = str(config.get("method", "GET")).upper()
    url_template = str(config.get("url_template", ""))
    problem = check_url_template(url_template)
    if problem:
        raise ValueError(problem)
    fields = template_fields(url_template)
    missing = [f for f in fields if f not in arguments]
    if missing:
        raise ValueError(f"missing arguments for the URL: {', '.join(missing)}")
    url = url_template.format(**{f: quote(str(arguments[f]), safe="") for f in fields})
    rest = {k: v for k, v in arguments.items() if k not in fields}
    headers = {str(k): str(v) for k, v in dict(config.get("headers") or {}).items()}
    headers.update(spec.secret_headers)
    params: dict[str, Any] = {}
    body: Any = None
    if method in ("GET", "DELETE"):
        params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in rest.items()}
    elif rest:
        body = rest
    return method, url, headers, params, body


@register_kind("http")
async def call_http(spec: ToolSpec, arguments: dict[str, Any], token: CancellationToken) -> str:
    from tools.runtime import ToolCallError

    try:
        method, url, headers, params, body = build_request(spec, arguments)
    except ValueError as exc:
        raise ToolCallError(f"Tool {spec.name!r} cannot build its request: {exc}.") from exc
    async with httpx.AsyncClient(follow_redirects=False, timeout=spec.timeout_seconds) as client:
        try:
            async with client.stream(method, url, headers=headers, params=params, json=body) as response:
                chunks = await read_capped(response, MAX_RESPONSE_BYTES)
        except httpx.HTTPError as exc:
            raise ToolCallError(f"Tool {spec.name!r}: the request failed: {type(exc).__name__}: {exc}") from exc
    text = bytes(chunks[:MAX_RESPONSE_BYTES]).decode(response.encoding or "utf-8", "replace")
    if len(chunks) > MAX_RESPONSE_BYTES:
        text += f"\n[response cut at {MAX_RESPONSE_BYTES} bytes]"
    if response.status_code >= 400:
        raise ToolCallError(f"Tool {spec.name!r}: HTTP {response.status_code}: {text[:2000]}")
    if 300 <= response.status_code < 400:
        raise ToolCallError(f"Tool {spec.name!r}: HTTP {response.status_code} redirect (not followed).")
    return text
