"""Authenticating a request by its API key (``Authorization: Token <key>``): DRF's authentication
class for /api/, and the same check for the plain views of /v1/.

Bad keys are counted per client address; past ``LODESTONE_RATE_BAD_API_KEYS`` every key from that
address, good or bad, is refused with 429 until the window passes, so keys cannot be guessed.
"""

from __future__ import annotations

import math

from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from config.accounts import services
from config.accounts.limits import client_ip, rate_record, rate_setting, rate_wait
from config.accounts.models import ApiKey

BAD_KEY_SCOPE = "bad-api-key"
TOO_MANY_BAD_KEYS = "Too many bad API keys from your address."


class ApiKeyRefused(Exception):
    """The key was not accepted: 401, or 429 with ``wait`` seconds when the address is locked out."""

    def __init__(self, message: str, *, wait: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.wait = wait

    @property
    def status_code(self) -> int:
        return 401 if self.wait is None else 429


def api_key_check(request: HttpRequest, key: str) -> ApiKey:
    """The usable key ``key`` is, or ApiKeyRefused; counts a bad one against the client address."""
    ip = client_ip(request)
    rate = rate_setting("LODESTONE_RATE_BAD_API_KEYS")
    wait = rate_wait(scope=BAD_KEY_SCOPE, ident=ip, rate=rate)
    if wait is not None:
        raise ApiKeyRefused(f"{TOO_MANY_BAD_KEYS} Try again in {math.ceil(wait)} seconds.", wait=wait)
    api_key = services.api_key_authenticate(key=key)
    if api_key is None:
        rate_record(scope=BAD_KEY_SCOPE, ident=ip, rate=rate)
        raise ApiKeyRefused("Invalid API key (unknown, expired or revoked).")
    return api_key


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Token <key>``; anonymous calls get 401 with ``WWW-Authenticate: Token``."""

    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[object, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None  # not ours: the session may still authenticate
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send the header as `Authorization: Token <key>`.")
        try:
            api_key = api_key_check(request._request, parts[1].decode(errors="replace"))
        except ApiKeyRefused as exc:
            if exc.wait is not None:
                # DRF adds "Expected available in N seconds." and the Retry-After header.
                raise exceptions.Throttled(wait=exc.wait, detail=TOO_MANY_BAD_KEYS) from None
            raise exceptions.AuthenticationFailed(exc.message) from None
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
