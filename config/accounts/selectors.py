"""Reads: a user sees only their own keys."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from config.accounts.models import ApiKey


def api_key_list(*, user: AbstractBaseUser) -> QuerySet[ApiKey]:
    """The user's keys that were not revoked, newest first (expired ones included, marked so)."""
    return ApiKey.objects.filter(user_id=user.pk, revoked_at__isnull=True)


def api_key_get(*, user: AbstractBaseUser, pk: int) -> ApiKey | None:
    """One of the user's own keys, or None: another user's key is as absent as a missing one."""
    return api_key_list(user=user).filter(pk=pk).first()
