"""Request limits: sliding windows of timestamps in Django's cache (shared by all processes when
the cache is Redis), and the client address they count by.

A rate is a setting such as ``"30/minute"``; an empty one switches that limit off.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int


def rate_parse(text: str | None) -> Rate | None:
    """``"N/period"`` (second, minute, hour, day, or their first letter); None when empty."""
    if not text:
        return None
    count, _, period = text.partition("/")
    seconds = next((s for name, s in _PERIODS.items() if period.strip() in (name, name[0])), None)
    if not count.strip().isdigit() or int(count) < 1 or seconds is None:
        raise ImproperlyConfigured(f"A rate is 'N/second|minute|hour|day', got {text!r}.")
    return Rate(int(count), seconds)


def rate_setting(name: str) -> Rate | None:
    """The rate in setting ``name``, read at call time (tests change it per test)."""
    return rate_parse(getattr(settings, name, None))


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or with LODESTONE_TRUSTED_PROXY_COUNT proxies in front,
    the address the outermost of them saw (X-Forwarded-For counted from the right, because a client
    can put anything at its left)."""
    proxies: int = settings.LODESTONE_TRUSTED_PROXY_COUNT
    remote = str(request.META.get("REMOTE_ADDR") or "unknown")
    forwarded = [a.strip() for a in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",") if a.strip()]
    if proxies <= 0 or not forwarded:
        return remote
    return forwarded[-min(proxies, len(forwarded))]


def _key(scope: str, ident: str) -> str:
    return f"lodestone:limit:{scope}:{ident}"


def _history(scope: str, ident: str, rate: Rate, now: float) -> list[float]:
    return [t for t in cache.get(_key(scope, ident), []) if t > now - rate.seconds]


def rate_wait(*, scope: str, ident: str, rate: Rate | None) -> float | None:
    """Seconds until ``ident`` may go on, or None when it is under the rate. Counts nothing."""
    if rate is None:
        return None
    now = time.time()
    history = _history(scope, ident, rate, now)
    if len(history) < rate.count:
        return None
    return max(1.0, rate.seconds - (now - history[-rate.count]))


def rate_record(*, scope: str, ident: str, rate: Rate | None) -> None:
    """Count one event of ``ident`` (a request, a failure)."""
    if rate is None:
        return
    now = time.time()
    history = [*_history(scope, ident, rate, now), now]
    cache.set(_key(scope, ident), history[-rate.count :], timeout=rate.seconds)


def rate_hit(*, scope: str, ident: str, rate: Rate | None) -> float | None:
    """Count one request unless it is over the rate; the seconds to wait when it is (refused)."""
    wait = rate_wait(scope=scope, ident=ident, rate=rate)
    if wait is None:
        rate_record(scope=scope, ident=ident, rate=rate)
    return wait
