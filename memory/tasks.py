"""Celery tasks of the memory app: thin interfaces that take ids and call the services."""

from __future__ import annotations

from celery import Task, shared_task

from memory import services


@shared_task(name="memory.consolidate", ignore_result=True)
def memory_consolidate_task(
    owner_id: int | None = None,
    agent_id: int | None = None,
    threshold: float = services.CONSOLIDATION_THRESHOLD,
    all_owners: bool = False,
) -> int:
    """Consolidate one owner's memories (``owner_id`` None: the shared ones), or everyone's."""
    from django.contrib.auth import get_user_model

    from agents.models import Agent

    owner = get_user_model().objects.get(pk=owner_id) if owner_id is not None else None
    agent = Agent.objects.get(pk=agent_id) if agent_id is not None else None
    created = services.memory_consolidate(owner=owner, agent=agent, threshold=threshold, all_owners=all_owners)
    return len(created)


@shared_task(name="memory.mirror_drain", bind=True, ignore_result=True, max_retries=None)
def memory_mirror_drain_task(self: Task) -> int:
    """Send pending Firestore mirror writes. While Firestore fails, the entries stay and this task
    comes back after their backoff (2 s doubling to 5 min); nothing is dropped."""
    from memory.firebase.outbox import outbox_drain

    result = outbox_drain()
    # Only a drain that did something keeps going: one that found every entry waiting out its
    # backoff leaves them to the task that set it, so an outage does not multiply the retries.
    if result.retry_in is not None and (result.sent or result.failed):
        raise self.retry(countdown=max(result.retry_in, 0.5))
    return result.sent
