"""Writes: API keys are created (the plain key is returned once, never stored), revoked, and
checked (which records their last use)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from hmac import compare_digest

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.utils import timezone

from config.accounts.models import KEY_MARK, ApiKey, key_digest, key_prefix

# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
NAME_MAX_CHARS = ApiKey._meta.get_field("name").max_length or 100


def api_key_create(*, user: AbstractBaseUser, name: str, expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """A new key of ``user``: the row, and the key itself (to show once)."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the key a name, e.g. what will use it."})
    if len(name) > NAME_MAX_CHARS:
        raise ValidationError({"name": f"At most {NAME_MAX_CHARS} characters."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    key = f"{KEY_MARK}{secrets.token_hex(4)}{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        user=user,  # type: ignore[misc]  # the configured user model
        name=name,
        prefix=key_prefix(key),
        digest=key_digest(key),
        expires_at=expires_at,
    )
    return api_key, key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """The key stops working at once; its row stays, for the record."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_authenticate(*, key: str) -> ApiKey | None:
    """The usable key (not revoked, not expired, of an active user) that ``key`` is, or None."""
    key = key.strip()
    if not key:
        return None
    digest = key_digest(key)
    candidates = ApiKey.objects.select_related("user").filter(prefix=key_prefix(key), revoked_at__isnull=True)
    # Found by its public prefix, proven by a constant-time comparison of the digest.
    api_key = next((c for c in candidates if compare_digest(c.digest, digest)), None)
    if api_key is None or api_key.is_expired or not api_key.user.is_active:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
