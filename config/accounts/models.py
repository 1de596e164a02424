"""API keys, stored as a SHA-256 digest: the key itself is shown once, when it is created."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone

# New keys look like ``lds_1a2b3c4d<secret>``: the first 12 characters are the public prefix that
# finds the row; the digest of the whole key proves it. Keys imported from DRF's authtoken table
# (40 hex characters, see migration 0002) use their first 8 characters as the prefix.
KEY_MARK = "lds_"
PREFIX_LENGTH = len(KEY_MARK) + 8
LEGACY_PREFIX_LENGTH = 8


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH] if key.startswith(KEY_MARK) else key[:LEGACY_PREFIX_LENGTH]


def key_digest(key: str) -> str:
    # A fast hash is enough: keys carry 256 random bits (no dictionary to try), and it does not
    # depend on SECRET_KEY, so rotating that does not revoke every key.
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, help_text="What the key is for, e.g. the integration using it.")
    prefix = models.CharField(max_length=PREFIX_LENGTH, db_index=True, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and not self.is_expired
