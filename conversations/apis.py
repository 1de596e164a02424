"""REST endpoints for conversations, their messages and runs.

One API class per operation, nested input and output serializers (HackSoft Django-Styleguide):
each view parses its input, calls the selectors and services every other adapter uses, and
renders. Messages and runs come out in exactly the shapes the WebSocket sends
(``realtime.serialize_message`` / ``realtime.serialize_run``); the serializers below that bear
their names only describe those shapes for the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from agents import selectors as agent_selectors
from config import inputs
from config.common.permissions import HasPermission
from config.rest import LimitOffsetPagination, StrictCharField
from conversations import selectors, services
from conversations.models import Conversation, Message, Run
from conversations.realtime import serialize_message, serialize_run

MESSAGES_DEFAULT_LIMIT = 100
MESSAGES_MAX_LIMIT = 500

# Error bodies are ``{"detail": ...}`` or, for invalid fields, ``{"<field>": ["..."]}`` (config.api).
BAD_REQUEST = OpenApiResponse(description="Invalid input: a readable message per field, or under `detail`.")
NOT_FOUND = OpenApiResponse(description="No such object among the caller's.")


def _user(request: Request) -> User:
    # IsAuthenticated (the default permission) has already turned anonymous callers away.
    return cast(User, request.user)


# --- Shapes shared by several endpoints (and by the WebSocket)


@extend_schema_serializer(component_name="Message")
class MessageOutputSerializer(serializers.Serializer):
    """A stored message, in the shape of the WebSocket's `conversation.message` events."""

    id = serializers.IntegerField()
    seq = serializers.IntegerField(help_text="Gapless position in the conversation, from 1.")
    run_id = serializers.IntegerField(allow_null=True)
    # A field named like Field.source: DRF moves declared fields off the class, the stubs cannot know.
    source = serializers.CharField(help_text='"user", or the slug of the agent that spoke.')  # type: ignore[assignment]
    type = serializers.ChoiceField(choices=Message.Type.choices)
    content = serializers.CharField(allow_blank=True)
    payload = serializers.JSONField(help_text="Structured details, e.g. tool calls and their results.")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    latency_ms = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(component_name="Run")
class RunOutputSerializer(serializers.Serializer):
    """One reply to one user message, in the shape of the WebSocket's `conversation.run` events."""

    id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Run.Status.choices)
    error = serializers.CharField(allow_blank=True)
    stop_reason = serializers.CharField(allow_blank=True)
    cancel_requested = serializers.BooleanField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    created_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(component_name="Counterpart")
class CounterpartOutputSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


@extend_schema_serializer(component_name="Conversation")
class ConversationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    team = CounterpartOutputSerializer(allow_null=True, help_text="Set when the conversation talks to a team.")
    agent = CounterpartOutputSerializer(allow_null=True, help_text="Set when the conversation talks to one agent.")
    last_seq = serializers.IntegerField(help_text="The seq of the latest message (0 when there is none).")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="ConversationDetail")
class ConversationDetailOutputSerializer(ConversationOutputSerializer):
    """A conversation with its queued or running run, if any."""

    active_run = serializers.SerializerMethodField()

    # The view passes the run as ``context["active_run"]`` (from ``selectors.run_active``).
    @extend_schema_field(RunOutputSerializer(allow_null=True))
    def get_active_run(self, conversation: Conversation) -> dict[str, Any] | None:
        run: Run | None = self.context.get("active_run")
        return serialize_run(run) if run is not None else None


# --- Conversations


class ConversationListCreateApi(APIView):
    pagination_class = LimitOffsetPagination

    @extend_schema_serializer(component_name="ConversationCreate")
    class InputSerializer(serializers.Serializer):
        title = StrictCharField(
            required=False, allow_blank=True, max_length=services.TITLE_MAX, default="", help_text="Optional."
        )
        team = serializers.SlugRelatedField(
            slug_field="slug",
            queryset=agent_selectors.team_list(),
            required=False,
            allow_null=True,
            default=None,
            help_text="Slug of the team to talk to (give a team or an agent, not both).",
            error_messages={"does_not_exist": "There is no team with the slug “{value}”."},
        )
        agent = serializers.SlugRelatedField(
            slug_field="slug",
            queryset=agent_selectors.agent_list(),
            required=False,
            allow_null=True,
            default=None,
            help_text="Slug of the agent to talk to (give a team or an agent, not both).",
            error_messages={"does_not_exist": "There is no agent with the slug “{value}”."},
        )

    @extend_schema(
        operation_id="conversations_list",
        summary="The caller's conversations, most recently active first",
        responses=ConversationOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.conversation_list(user=request.user), request, view=self)
        return paginator.get_paginated_response(ConversationOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="conversations_create",
        summary="Start a conversation with a team or an agent",
        request=InputSerializer,
        responses={
            status.HTTP_201_CREATED: ConversationDetailOutputSerializer,
            status.HTTP_400_BAD_REQUEST: BAD_REQUEST,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        conversation = services.conversation_create(owner=_user(request), **serializer.validated_data)
        return Response(ConversationDetailOutputSerializer(conversation).data, status=status.HTTP_201_CREATED)


class ConversationDetailApi(APIView):
    @extend_schema(
        operation_id="conversations_retrieve",
        summary="One conversation, with its active run",
        responses={status.HTTP_200_OK: ConversationDetailOutputSerializer, status.HTTP_404_NOT_FOUND: NOT_FOUND},
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
        active_run = selectors.run_active(conversation=conversation)
        return Response(ConversationDetailOutputSerializer(conversation, context={"active_run": active_run}).data)


# --- Messages


class MessageListCreateApi(APIView):
    class FilterSerializer(serializers.Serializer):
        after = serializers.IntegerField(
            min_value=0,
            max_value=inputs.QUERY_INT_MAX,
            default=0,
            help_text="Return messages with a seq greater than this (0: from the start).",
        )
        limit = serializers.IntegerField(
            min_value=1,
            max_value=MESSAGES_MAX_LIMIT,
            default=MESSAGES_DEFAULT_LIMIT,
            help_text="At most this many messages.",
        )

    @extend_schema_serializer(component_name="MessagePage")
    class ListOutputSerializer(serializers.Serializer):
        next = serializers.URLField(
            allow_null=True, help_text="The URL of the following messages, or null when these are the latest."
        )
        results = MessageOutputSerializer(many=True)

    @extend_schema_serializer(component_name="MessagePost")
    class InputSerializer(serializers.Serializer):
        text = StrictCharField(
            allow_blank=True,
            trim_whitespace=False,
            help_text="Not empty; at most LODESTONE_MESSAGE_MAX_CHARS characters (32,000 by default).",
        )

    @extend_schema_serializer(component_name="MessagePosted")
    class PostOutputSerializer(serializers.Serializer):
        message = MessageOutputSerializer()
        run = RunOutputSerializer()

    @extend_schema(
        operation_id="conversations_messages_list",
        summary="Messages with a seq greater than `after`, in order",
        parameters=[FilterSerializer],
        responses={
            status.HTTP_200_OK: ListOutputSerializer,
            status.HTTP_400_BAD_REQUEST: BAD_REQUEST,
            status.HTTP_404_NOT_FOUND: NOT_FOUND,
        },
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        after: int = filters.validated_data["after"]
        limit: int = filters.validated_data["limit"]
        # One extra row tells whether there is a next page.
        messages = [
            serialize_message(m)
            for m in selectors.message_list(conversation=conversation, after=after, limit=limit + 1)
        ]
        next_url = None
        if len(messages) > limit:
            messages = messages[:limit]
            next_url = replace_query_param(request.build_absolute_uri(), "after", messages[-1]["seq"])
        return Response({"next": next_url, "results": messages})

    @extend_schema(
        operation_id="conversations_messages_create",
        summary="Post a message; the reply runs in the background",
        description=(
            "Stores the message and queues a run that writes the reply. Follow it with "
            "`GET .../messages/?after=<seq>`, `GET /api/runs/{id}/` or the conversation's WebSocket."
        ),
        request=InputSerializer,
        responses={
            status.HTTP_202_ACCEPTED: PostOutputSerializer,
            status.HTTP_400_BAD_REQUEST: BAD_REQUEST,
            status.HTTP_404_NOT_FOUND: NOT_FOUND,
            status.HTTP_409_CONFLICT: OpenApiResponse(description="A reply is still running in this conversation."),
        },
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message, run = services.message_post(
            conversation=conversation, user=_user(request), text=serializer.validated_data["text"]
        )
        return Response(
            {"message": serialize_message(message), "run": serialize_run(run)}, status=status.HTTP_202_ACCEPTED
        )


# --- Runs


class RunDetailApi(APIView):
    @extend_schema(
        operation_id="runs_retrieve",
        summary="One run (one reply to one message)",
        responses={status.HTTP_200_OK: RunOutputSerializer, status.HTTP_404_NOT_FOUND: NOT_FOUND},
    )
    def get(self, request: Request, run_id: int) -> Response:
        run = selectors.run_get(user=request.user, run_id=run_id)
        return Response(serialize_run(run))


class RunCancelApi(APIView):
    @extend_schema(
        operation_id="runs_cancel",
        summary="Stop a run",
        request=None,
        responses={status.HTTP_200_OK: RunOutputSerializer, status.HTTP_404_NOT_FOUND: NOT_FOUND},
        description=(
            "Ask the run to stop: a queued run is cancelled at once, a running one stops at its next step "
            "(poll the run or listen on the socket). A finished run is returned unchanged."
        ),
    )
    def post(self, request: Request, run_id: int) -> Response:
        run = selectors.run_get(user=request.user, run_id=run_id)
        return Response(serialize_run(services.run_cancel(run=run)))


class RunInputApi(APIView):
    @extend_schema_serializer(component_name="RunInput")
    class InputSerializer(serializers.Serializer):
        text = StrictCharField(allow_blank=True, trim_whitespace=False, help_text="The answer to the team's question.")

    @extend_schema_serializer(component_name="RunInputAnswered")
    class OutputSerializer(serializers.Serializer):
        message = MessageOutputSerializer()
        run = RunOutputSerializer(help_text="The run that continues with the answer (a new one after a handoff).")

    @extend_schema(
        operation_id="runs_input",
        summary="Answer the question a run waits on",
        description=(
            "A run in `awaiting_input` asked the user (an `input_request` message). The answer is stored as "
            "the user's message and the team continues: in the same run, or — after a swarm's handoff to the "
            "user or a server restart — in a new run that gets the answer as its task."
        ),
        request=InputSerializer,
        responses={
            status.HTTP_202_ACCEPTED: OutputSerializer,
            status.HTTP_400_BAD_REQUEST: BAD_REQUEST,
            status.HTTP_404_NOT_FOUND: NOT_FOUND,
            status.HTTP_409_CONFLICT: OpenApiResponse(description="The run is not waiting for an answer."),
        },
    )
    def post(self, request: Request, run_id: int) -> Response:
        run = selectors.run_get(user=request.user, run_id=run_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message, answering = services.run_answer(run=run, user=_user(request), text=serializer.validated_data["text"])
        return Response(
            {"message": serialize_message(message), "run": serialize_run(answering)}, status=status.HTTP_202_ACCEPTED
        )


class ConversationUsageApi(APIView):
    @extend_schema(
        operation_id="conversations_usage",
        summary="Tokens and cost of a conversation: in total, per run and per agent",
        description=(
            "Summed from the messages; each message's cost is its tokens at its model config's prices "
            "(per million prompt and completion tokens), as a decimal string."
        ),
        responses={status.HTTP_200_OK: OpenApiTypes.OBJECT, status.HTTP_404_NOT_FOUND: NOT_FOUND},
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        from conversations.usage import conversation_usage

        conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
        return Response(conversation_usage(conversation=conversation))


class RunPauseApi(APIView):
    @extend_schema(
        operation_id="runs_pause",
        summary="Pause a run",
        request=None,
        description=(
            "A running team stops at once (the turn in flight is dropped) and waits in `awaiting_input`, its state "
            "kept; resume it with `POST /api/runs/{id}/resume/` or by answering. A queued run is cancelled."
        ),
        responses={status.HTTP_200_OK: RunOutputSerializer, status.HTTP_404_NOT_FOUND: NOT_FOUND},
    )
    def post(self, request: Request, run_id: int) -> Response:
        run = selectors.run_get(user=request.user, run_id=run_id)
        return Response(serialize_run(services.run_pause(run=run)))


class RunResumeApi(APIView):
    @extend_schema(
        operation_id="runs_resume",
        summary="Resume a paused or waiting run",
        request=None,
        description='Continues the team (as the answer "Continue."); returns the run that goes on.',
        responses={
            status.HTTP_202_ACCEPTED: RunOutputSerializer,
            status.HTTP_404_NOT_FOUND: NOT_FOUND,
            status.HTTP_409_CONFLICT: OpenApiResponse(description="The run is not waiting."),
        },
    )
    def post(self, request: Request, run_id: int) -> Response:
        run = selectors.run_get(user=request.user, run_id=run_id)
        _, answering = services.run_resume(run=run, user=_user(request))
        return Response(serialize_run(answering), status=status.HTTP_202_ACCEPTED)


class MonitoringApi(APIView):
    permission_classes = [HasPermission("conversations.view_monitoring")]

    @extend_schema(
        operation_id="monitoring",
        summary="How runs, agents, memory and tools are doing (permission conversations.view_monitoring)",
        description=(
            "What the monitoring page shows, for integrations: runs created in the period (counts by status, "
            "failure rate, queue wait and duration p50/p95 in ms, tokens, cost), active runs (with `stale` for "
            "ones whose process stopped signing life and `stuck_in_queue`), recent failures, per-agent figures, "
            "memory (counts, Firestore mirror backlog), tool calls and how the deployment is wired."
        ),
        parameters=[
            OpenApiParameter("period", str, enum=["1h", "24h", "7d", "30d"], description="Default 24h."),
        ],
        responses={
            status.HTTP_200_OK: OpenApiTypes.OBJECT,
            status.HTTP_400_BAD_REQUEST: BAD_REQUEST,
            status.HTTP_403_FORBIDDEN: OpenApiTypes.OBJECT,
        },
    )
    def get(self, request: Request) -> Response:
        from conversations import monitoring

        period = request.query_params.get("period", monitoring.DEFAULT_PERIOD)
        if period not in monitoring.PERIODS:
            raise ValidationError({"period": f"Choose one of {', '.join(monitoring.PERIODS)}."})
        return Response(monitoring.snapshot(period=period))
