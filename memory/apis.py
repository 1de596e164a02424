"""REST endpoints for experiences (owner-scoped CRUD) and semantic search.

HackSoft style: one API class per resource operation set, nested input/output serializers, the
same services and selectors as the Memory page. A caller sees their own and the shared memories,
changes only their own (shared ones: staff).
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import selectors as agent_selectors
from config.rest import (
    LimitOffsetPagination,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
)
from memory import selectors, services
from memory.models import Experience, ExperienceRevision

BAD_REQUEST = OpenApiResponse(description="Invalid input: a readable message per field, or under `detail`.")
NOT_FOUND = OpenApiResponse(description="No such memory among the caller's (or the caller may not change it).")


class KindField(serializers.ChoiceField):
    """``episodic`` or ``semantic`` (``ExperienceKindEnum`` in the schema: ENUM_NAME_OVERRIDES)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Experience.Kind.choices, **kwargs)


def _user(request: Request) -> User:
    return cast(User, request.user)


@extend_schema_serializer(component_name="ExperienceSourceMessage")
class SourceMessageOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    seq = serializers.IntegerField(help_text="The message's place in its conversation (the chat's `#msg-<seq>`).")
    # A field named like Field.source (as in conversations.apis): DRF moves declared fields off the class.
    source = serializers.CharField(help_text="`user`, or the agent that said it.")  # type: ignore[assignment]
    type = serializers.CharField()


@extend_schema_serializer(component_name="Experience")
class ExperienceOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = KindField()
    text = serializers.CharField()
    importance = serializers.FloatField(help_text="0..1: how much this memory matters.")
    weight = serializers.FloatField(help_text="0..1: lowered once merged into a consolidated memory.")
    metadata = serializers.JSONField()
    shared = serializers.BooleanField(source="is_shared", help_text="Visible to every user.")
    agent = serializers.SerializerMethodField(help_text="Slug of the agent this memory belongs to, if any.")
    conversation_id = serializers.IntegerField(allow_null=True)
    run_id = serializers.IntegerField(allow_null=True)
    consolidated_into = serializers.IntegerField(
        source="consolidated_into_id", allow_null=True, help_text="The semantic memory this one was merged into."
    )
    sources = serializers.SerializerMethodField(help_text="The memories this one was consolidated from.")
    source_messages = SourceMessageOutputSerializer(
        many=True, source="source_messages.all", help_text="The messages this memory came from (its provenance)."
    )
    chunk_count = serializers.IntegerField(help_text="How many vectors (text chunks) represent it.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_agent(self, experience: Experience) -> str | None:
        return experience.agent.slug if experience.agent else None

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_sources(self, experience: Experience) -> list[int]:
        return sorted(source.pk for source in experience.sources.all())  # prefetched by the list


def _editable(request: Request, experience_id: int) -> Experience:
    experience = selectors.experience_get_editable(user=_user(request), pk=experience_id)
    if experience is None:
        raise Http404
    return experience


@extend_schema_serializer(component_name="ExperienceRevision")
class RevisionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    memory_id = serializers.IntegerField(help_text="The memory's id (kept once it is deleted).")
    cause = serializers.ChoiceField(choices=ExperienceRevision.Cause.choices)
    old_text = serializers.CharField()
    new_text = serializers.CharField(help_text="Empty for a deletion; for consolidation, the merged memory's text.")
    actor = serializers.SerializerMethodField(help_text="Username of the user who made the change, if a user did.")
    run_id = serializers.IntegerField(allow_null=True, help_text="The run the model learned the change from.")
    created_at = serializers.DateTimeField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_actor(self, revision: ExperienceRevision) -> str | None:
        return revision.actor.get_username() if revision.actor else None


class ExperienceListCreateApi(APIView):
    pagination_class = LimitOffsetPagination

    class FilterSerializer(serializers.Serializer):
        # Empty values mean "no filter", as an empty search box does.
        agent = serializers.CharField(
            required=False, allow_blank=True, help_text="Slug of the agent whose memories to list."
        )
        kind = KindField(required=False, allow_blank=True)
        text = serializers.CharField(required=False, allow_blank=True, help_text="Only memories containing this text.")

    @extend_schema_serializer(component_name="ExperienceCreate")
    class InputSerializer(serializers.Serializer):
        text = StrictCharField(
            allow_blank=True, trim_whitespace=False, help_text="Not empty; long texts are embedded in chunks."
        )
        kind = KindField(default=Experience.Kind.EPISODIC)
        importance = StrictFloatField(min_value=0, max_value=1, default=0.5)
        metadata = serializers.DictField(required=False, default=dict)
        agent = serializers.SlugRelatedField(
            slug_field="slug",
            queryset=agent_selectors.agent_list(),
            required=False,
            allow_null=True,
            default=None,
            error_messages={"does_not_exist": "There is no agent with the slug “{value}”."},
        )
        shared = StrictBooleanField(default=False, help_text="Visible to every user (staff only).")

    @extend_schema(
        operation_id="memory_experiences_list",
        summary="The caller's and the shared memories, newest first",
        parameters=[FilterSerializer],
        responses={status.HTTP_200_OK: ExperienceOutputSerializer(many=True), status.HTTP_400_BAD_REQUEST: BAD_REQUEST},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        agent_id = None
        if data.get("agent"):
            agent = agent_selectors.agent_list().filter(slug=data["agent"]).first()
            if agent is None:
                raise serializers.ValidationError({"agent": f"There is no agent with the slug “{data['agent']}”."})
            agent_id = agent.pk
        queryset = selectors.experience_list(
            user=request.user, agent_id=agent_id, kind=data.get("kind"), text=data.get("text", "")
        ).prefetch_related("sources")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(ExperienceOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="memory_experiences_create",
        summary="Store a memory (embedded and indexed at once)",
        request=InputSerializer,
        responses={status.HTTP_201_CREATED: ExperienceOutputSerializer, status.HTTP_400_BAD_REQUEST: BAD_REQUEST},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["shared"] and not request.user.has_perm("memory.share_experience"):
            # A field error (400), as before: the caller can store the same memory as their own.
            raise serializers.ValidationError(
                {"shared": "Storing a shared memory needs the permission memory.share_experience."}
            )
        experience = services.experience_store(
            text=data["text"],
            kind=data["kind"],
            importance=data["importance"],
            metadata=data["metadata"],
            agent=data["agent"],
            owner=None if data["shared"] else _user(request),
        )
        return Response(ExperienceOutputSerializer(experience).data, status=status.HTTP_201_CREATED)


class ExperienceDetailApi(APIView):
    @extend_schema_serializer(component_name="ExperienceUpdate")
    class InputSerializer(serializers.Serializer):
        text = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
        kind = KindField(required=False)
        importance = StrictFloatField(min_value=0, max_value=1, required=False)
        metadata = serializers.DictField(required=False)

    @extend_schema(
        operation_id="memory_experiences_retrieve",
        summary="One memory, with its provenance",
        responses={status.HTTP_200_OK: ExperienceOutputSerializer, status.HTTP_404_NOT_FOUND: NOT_FOUND},
    )
    def get(self, request: Request, experience_id: int) -> Response:
        experience = selectors.experience_get(user=request.user, pk=experience_id)
        if experience is None:
            raise Http404
        return Response(ExperienceOutputSerializer(experience).data)

    @extend_schema(
        operation_id="memory_experiences_update",
        summary="Change a memory's text, kind, importance or metadata (a new text is re-embedded)",
        request=InputSerializer,
        responses={
            status.HTTP_200_OK: ExperienceOutputSerializer,
            status.HTTP_400_BAD_REQUEST: BAD_REQUEST,
            status.HTTP_404_NOT_FOUND: NOT_FOUND,
        },
    )
    def patch(self, request: Request, experience_id: int) -> Response:
        experience = _editable(request, experience_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        experience = services.experience_update(
            experience=experience, **serializer.validated_data, revision=services.Revision.user(_user(request))
        )
        return Response(ExperienceOutputSerializer(experience).data)

    @extend_schema(
        operation_id="memory_experiences_destroy",
        summary="Delete a memory and its vectors",
        responses={status.HTTP_204_NO_CONTENT: None, status.HTTP_404_NOT_FOUND: NOT_FOUND},
    )
    def delete(self, request: Request, experience_id: int) -> Response:
        services.experience_delete(
            experience=_editable(request, experience_id), revision=services.Revision.user(_user(request))
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExperienceHistoryApi(APIView):
    @extend_schema(
        operation_id="memory_experiences_history",
        summary="How a memory's text changed, newest first: who or what changed it (a user, the model "
        "learning from a run, consolidation) and what it said before",
        responses={status.HTTP_200_OK: RevisionOutputSerializer(many=True), status.HTTP_404_NOT_FOUND: NOT_FOUND},
    )
    def get(self, request: Request, experience_id: int) -> Response:
        experience = selectors.experience_get(user=request.user, pk=experience_id)
        if experience is None:
            raise Http404
        return Response(RevisionOutputSerializer(selectors.experience_history(experience=experience), many=True).data)


class MemorySearchApi(APIView):
    @extend_schema_serializer(component_name="MemorySearch")
    class InputSerializer(serializers.Serializer):
        query = StrictCharField(help_text="What to look for, in plain words.")
        k = StrictIntegerField(min_value=1, max_value=services.K_MAX, default=5)
        filters = serializers.DictField(
            required=False,
            default=dict,
            help_text=(
                "Pinecone-style metadata filter on `agent` (id), `kind`, `conversation` (id), `importance`, "
                "`created` (unix time): equality, `$eq`/`$ne`/`$gt`/`$gte`/`$lt`/`$lte`, `$in`/`$nin`, e.g. "
                '`{"kind": "semantic", "importance": {"$gte": 0.5}}`.'
            ),
        )

    @extend_schema_serializer(component_name="MemorySearchHit")
    class HitOutputSerializer(serializers.Serializer):
        experience = ExperienceOutputSerializer()
        score = serializers.FloatField(help_text="weight * (0.70 similarity + 0.15 recency + 0.15 importance)")
        similarity = serializers.FloatField(help_text="Cosine similarity of the best chunk.")

    @extend_schema(
        operation_id="memory_search",
        summary="The memories most worth recalling for a query, best first",
        request=InputSerializer,
        responses={status.HTTP_200_OK: HitOutputSerializer(many=True), status.HTTP_400_BAD_REQUEST: BAD_REQUEST},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        found = services.experiences_retrieve_similar(
            context=data["query"], user=_user(request), k=data["k"], filters=data["filters"]
        )
        hits = [{"experience": r.experience, "score": r.score, "similarity": r.similarity} for r in found]
        return Response(self.HitOutputSerializer(hits, many=True).data)
