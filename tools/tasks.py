"""Celery tasks of the tools app: thin interfaces over the services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="tools.expire_orphaned_approvals", ignore_result=True)
def expire_orphaned_approvals() -> int:
    """Approval requests whose run ended (its worker died) stop offering their buttons."""
    from tools.services import approvals_expire_orphaned

    return approvals_expire_orphaned()
