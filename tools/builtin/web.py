"""``web_fetch``: GET a web page from an allow-listed host and return its text.

Hosts come from ``LODESTONE_WEB_FETCH_ALLOWED_HOSTS`` (exact names, or ``.example.org`` for the
domain and its subdomains). Redirects are followed only to allowed hosts (at most 3), the body is
cut at ``LODESTONE_WEB_FETCH_MAX_BYTES``, HTML is reduced to its text."""

from __future__ import annotations

import html
import re
from typing import Annotated
from urllib.parse import urljoin, urlsplit

import httpx

from tools import conf
from tools.kinds.http import read_capped
from tools.registry import builtin_tool

MAX_REDIRECTS = 3
TIMEOUT_SECONDS = 15.0


def host_allowed(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname.lower()
    for allowed in conf.get("LODESTONE_WEB_FETCH_ALLOWED_HOSTS"):
        allowed = str(allowed).lower()
        if host == allowed or (allowed.startswith(".") and (host.endswith(allowed) or host == allowed[1:])):
            return True
    return False


def html_to_text(markup: str) -> str:
    markup = re.sub(r"(?is)<(script|style|noscript)\b.*?</\1>", " ", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</(p|div|h[1-6]|li|tr)>", "\n", markup)
    text = html.unescape(re.sub(r"<[^>]+>", " ", markup))
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


@builtin_tool("web_fetch", "Fetch a web page (only from allowed hosts) and return its text.")
async def web_fetch(url: Annotated[str, "The http(s) URL of the page"]) -> str:
    limit = int(conf.get("LODESTONE_WEB_FETCH_MAX_BYTES"))
    async with httpx.AsyncClient(follow_redirects=False, timeout=TIMEOUT_SECONDS) as client:
        for _ in range(MAX_REDIRECTS + 1):
            if not host_allowed(url):
                host = urlsplit(url).hostname or url
                return f"Error: {host} is not an allowed host for web_fetch."
            try:
                async with client.stream("GET", url, headers={"User-Agent": "Lodestone web_fetch"}) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    body = await read_capped(response, limit)
            except httpx.HTTPError as exc:
                return f"Error: the request failed: {type(exc).__name__}: {exc}"
            text = bytes(body[:limit]).decode(response.encoding or "utf-8", "replace")
            if "html" in response.headers.get("content-type", ""):
                text = html_to_text(text)
            if response.status_code >= 400:
                return f"Error: HTTP {response.status_code}: {text[:500]}"
            return text + (f"\n[cut at {limit} bytes]" if len(body) > limit else "")
    return f"Error: more than {MAX_REDIRECTS} redirects."
