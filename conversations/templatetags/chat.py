"""Template filters of the chat: sanitised markdown, a stable colour per agent name, safe DOM ids.

Agent and user text is untrusted. ``markdown`` renders it with raw HTML switched off (so ``<b>`` or
``<script>`` in the text shows as text), then ``nh3`` sanitises the result against an allow-list, so
nothing a model writes can inject markup or script into the page.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

MARKDOWN_EXTENSIONS = ["fenced_code", "tables", "sane_lists", "nl2br"]
ALLOWED_TAGS = {
    "a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "li",
    "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def _markdown_without_html() -> markdown_lib.Markdown:
    md = markdown_lib.Markdown(extensions=MARKDOWN_EXTENSIONS, output_format="html")
    # Raw HTML in the source is treated as text and escaped, not passed through.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md


def render_markdown(text: str) -> str:
    """Markdown -> sanitised HTML (a plain ``str``; the filter marks it safe)."""
    html = _markdown_without_html().convert(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


@register.filter(name="markdown")
def markdown_filter(text: Any) -> SafeString:
    return mark_safe(render_markdown(str(text or "")))  # noqa: S308 - sanitised by nh3 just above


# Hues that read well as text and as a badge on light and dark backgrounds (no pale yellows, and
# no pure red, which the chat keeps for errors).
AGENT_HUES = (205, 235, 265, 295, 325, 345, 20, 35, 145, 165, 180, 195)


@register.filter
def name_hue(name: Any) -> int:
    """A hue for a name, the same on every page and every server (a stable hash, not ``hash()``)."""
    digest = hashlib.sha1(str(name).encode(), usedforsecurity=False).digest()
    return AGENT_HUES[int.from_bytes(digest[:4], "big") % len(AGENT_HUES)]


@register.filter
def dom_id(value: Any) -> str:
    """Any string as a fragment usable in an element id and a CSS selector (stable, collision-safe)."""
    text = str(value)
    safe = _UNSAFE_ID_CHARS.sub("", text)[:40]
    if safe == text and safe:
        return safe
    return f"{safe}-{hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:8]}"


@register.filter
def pretty_json(value: Any) -> str:
    """Tool arguments arrive as a JSON string: indent them for reading; anything else as is."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


@register.filter
def initial(name: Any) -> str:
    text = str(name or "?").strip()
    return text[:1].upper() or "?"


@register.filter
def iso_time(value: Any) -> str:
    """``HH:MM`` (UTC) of an ISO timestamp; chat.js turns it into the reader's local time."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return ""
    return moment.strftime("%H:%M")


@register.filter
def duration(milliseconds: Any) -> str:
    try:
        ms = int(milliseconds)
    except (TypeError, ValueError):
        return ""
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"
