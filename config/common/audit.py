"""The audit log: one ``LogEntry`` (Django admin's own log) per change made through a service, so
admin form saves and service calls (imports, approvals, test runs, grants, ...) are read in one place.

Policy:
- The entry is written inside the same database transaction as the change (callers wrap both in
  ``transaction.atomic``): a change that is rolled back leaves no entry, and a committed change
  always has one (an entry written after the commit could be lost between the two).
- ``LogEntry.user`` is required. An agent's action is recorded under the person it acted for (the
  conversation's owner) and its message names the agent. An action with no person behind it (a
  management command, a system task, the demo seed) writes no entry: inventing a "system" user
  would add a login that nobody owns. It is logged to the ``lodestone.audit`` logger instead.
"""

from __future__ import annotations

import logging

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.db import models

logger = logging.getLogger("lodestone.audit")

MESSAGE_CHARS = 2000

__all__ = ["ADDITION", "CHANGE", "DELETION", "audit_record"]


def audit_record(
    *,
    user: AbstractBaseUser | AnonymousUser | int | None,
    obj: models.Model,
    action: int,
    message: str,
) -> LogEntry | None:
    """Record that ``user`` did ``action`` (ADDITION, CHANGE or DELETION) to ``obj``; ``message``
    says what, with the details that matter. Returns the entry, or None when no person acted."""
    user_id = user if isinstance(user, int) else getattr(user, "pk", None)
    if action not in (ADDITION, CHANGE, DELETION):
        raise ValueError(f"Unknown audit action {action!r}.")
    logger.info("audit user=%s %s %s #%s: %s", user_id, action, obj._meta.label, obj.pk, message)
    if user_id is None:
        return None
    return LogEntry.objects.create(
        user_id=user_id,
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=action,
        change_message=message[:MESSAGE_CHARS],
    )
