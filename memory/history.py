"""The history of memories: who or what changed a memory's text or deleted it, recorded by the
services (``memory.services``) in the transaction of the change."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from conversations.models import Run
from memory.models import Experience, ExperienceRevision

__all__ = ["Revision", "revision_record"]

Change = ExperienceRevision.Cause

# Who changed a memory, and how -> the revision's cause.
_CAUSES: dict[tuple[str, str], str] = {
    ("model", "store"): Change.MODEL_ADD,
    ("model", "update"): Change.MODEL_UPDATE,
    ("model", "delete"): Change.MODEL_DELETE,
    ("user", "update"): Change.USER_EDIT,
    ("user", "delete"): Change.USER_DELETE,
    ("consolidation", "update"): Change.CONSOLIDATION,
    ("", "update"): Change.EDIT,
    ("", "delete"): Change.DELETE,
}


@dataclass(frozen=True)
class Revision:
    """Who or what changes a memory: a user (``actor``), the model learning from a ``run``, or
    consolidation; ``""`` for a caller that says nothing (a tool, a script)."""

    by: str = ""
    actor: AbstractBaseUser | None = None
    run: Run | None = None

    @classmethod
    def user(cls, user: AbstractBaseUser) -> Revision:
        return cls(by="user", actor=user)

    @classmethod
    def model(cls, run: Run | None) -> Revision:
        return cls(by="model", run=run)


def revision_record(experience: Experience, revision: Revision, action: str, old_text: str, new_text: str) -> None:
    """Record a change in the caller's transaction (before a delete: the row still has its id)."""
    cause = _CAUSES.get((revision.by, action))
    if cause is None:
        return  # storing is a revision only when the model learned it
    ExperienceRevision.objects.create(
        experience=experience,
        memory_id=experience.pk,
        owner_id=experience.owner_id,
        cause=cause,
        old_text=old_text,
        new_text=new_text,
        actor_id=revision.actor.pk if revision.actor is not None else None,
        run=revision.run,
    )
