"""Reads of experiences. A user sees their own memories and the shared ones (``owner`` null)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from config.common.permissions import user_has_perm
from memory.models import Experience, ExperienceRevision

UserLike = AbstractBaseUser | AnonymousUser


def visible_q(user: UserLike | None) -> Q:
    """Own and shared memories; ``None`` (system jobs such as consolidation) sees everything."""
    if user is None:
        return Q()
    if not user.is_authenticated:
        return Q(pk__in=[])
    return Q(owner_id=user.pk) | Q(owner__isnull=True)


def experience_list(
    *,
    user: UserLike | None,
    agent_id: int | None = None,
    kind: str | None = None,
    conversation_id: int | None = None,
    text: str = "",
) -> QuerySet[Experience]:
    qs = Experience.objects.filter(visible_q(user)).select_related("agent", "consolidated_into")
    qs = qs.prefetch_related("source_messages")
    if agent_id is not None:
        qs = qs.filter(agent_id=agent_id)
    if kind:
        qs = qs.filter(kind=kind)
    if conversation_id is not None:
        qs = qs.filter(conversation_id=conversation_id)
    if text:
        qs = qs.filter(text__icontains=text)
    return qs


def experience_get(*, user: UserLike | None, pk: int) -> Experience | None:
    return experience_list(user=user).filter(pk=pk).first()


def experience_get_editable(*, user: UserLike, pk: int) -> Experience | None:
    """An experience this user may change or delete: their own; shared ones only with the
    permission ``memory.share_experience``."""
    experience = experience_get(user=user, pk=pk)
    if experience is None:
        return None
    if experience.owner_id is None and not user_has_perm(user, "memory.share_experience"):
        return None
    return experience


def experience_sources(*, experience: Experience) -> QuerySet[Experience]:
    """The memories a consolidated memory was merged from (its provenance)."""
    return experience.sources.all().order_by("created_at", "id")


def experience_history(*, experience: Experience) -> QuerySet[ExperienceRevision]:
    """The changes of a memory's text, newest first (who or what made each, and when)."""
    return ExperienceRevision.objects.filter(memory_id=experience.pk).select_related("actor", "run")


def experience_revisions_deleted(*, user: UserLike, limit: int = 20) -> list[ExperienceRevision]:
    """The user's own memories deleted lately (by them or by the model), newest first, with their text."""
    if not user.is_authenticated:
        return []
    causes = [
        ExperienceRevision.Cause.MODEL_DELETE,
        ExperienceRevision.Cause.USER_DELETE,
        ExperienceRevision.Cause.DELETE,
    ]
    return list(
        ExperienceRevision.objects.filter(owner_id=user.pk, cause__in=causes).select_related("actor", "run")[:limit]
    )


def experiences_by_ids(*, user: UserLike | None, ids: list[int]) -> dict[int, Experience]:
    rows = Experience.objects.filter(visible_q(user)).filter(pk__in=ids).select_related("agent")
    return {row.pk: row for row in rows}


def memory_health() -> dict[str, Any]:
    """For the monitoring view: how many memories of each kind, and the Firestore mirror's backlog
    (entries waiting, entries that failed at least once, the oldest one's age, the last error)."""
    from django.db.models import Count, Min
    from django.utils import timezone

    from memory.models import MirrorOutbox

    kinds = dict(Experience.objects.values_list("kind").annotate(n=Count("id")).values_list("kind", "n"))
    backlog = MirrorOutbox.objects.aggregate(n=Count("id"), oldest=Min("created_at"))
    failing = MirrorOutbox.objects.filter(attempts__gt=0)
    last_error = failing.exclude(last_error="").order_by("-id").values_list("last_error", flat=True).first()
    oldest = backlog["oldest"]
    return {
        "experiences": sum(kinds.values()),
        "by_kind": {kind: kinds.get(kind, 0) for kind in Experience.Kind.values},
        "consolidated_sources": Experience.objects.filter(consolidated_into__isnull=False).count(),
        "mirror_pending": backlog["n"],
        "mirror_failing": failing.count(),
        "mirror_oldest_seconds": round((timezone.now() - oldest).total_seconds(), 1) if oldest else None,
        "mirror_last_error": last_error or "",
    }
