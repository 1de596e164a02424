"""REST endpoints for tools: the tools a caller may see, creating a Python tool (pending), invoking
a tool directly, the invocation log, and answering a tool-approval request from the chat.

HackSoft style: one API class per operation, nested input/output serializers; views parse, check
permission, call one selector or service, render."""

from __future__ import annotations

from typing import cast

from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.rest import LimitOffsetPagination, StrictBooleanField, StrictCharField
from tools import selectors, services
from tools.models import Tool, ToolInvocation
from tools.runtime import CallContext, invoke

BAD_REQUEST = OpenApiResponse(description="Invalid input: a readable message per field, or under `detail`.")
FORBIDDEN = OpenApiResponse(description="The caller may not do this.")
NOT_FOUND = OpenApiResponse(description="No such tool among those the caller may see.")


def _user(request: Request) -> User:
    return cast(User, request.user)


def _visible_tool(request: Request, name: str) -> Tool:
    tool = selectors.tool_get_visible(user=request.user, name=name)
    if tool is None:
        raise Http404
    return tool


@extend_schema_serializer(component_name="Tool")
class ToolOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    # Plain strings (values listed) rather than enums: their names would collide in the schema.
    kind = serializers.CharField(help_text="builtin, python, http or mcp.")
    status = serializers.CharField(help_text="pending, approved or disabled.")
    parameters = serializers.JSONField(help_text="JSON schema of the arguments.")
    version = serializers.IntegerField()
    timeout_seconds = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="ToolInvocation")
class InvocationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    tool_name = serializers.CharField()
    agent = serializers.CharField(  # type: ignore[assignment]
        source="agent.slug", allow_null=True, help_text="Slug of the calling agent."
    )
    conversation_id = serializers.IntegerField(allow_null=True)
    run_id = serializers.IntegerField(allow_null=True)
    call_id = serializers.CharField(allow_blank=True)
    arguments = serializers.JSONField()
    status = serializers.CharField(help_text="ok, error, timeout, invalid or denied.")
    result_summary = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)
    duration_ms = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class ToolListCreateApi(APIView):
    pagination_class = LimitOffsetPagination

    @extend_schema_serializer(component_name="ToolCreate")
    class InputSerializer(serializers.Serializer):
        # A field named like Field.source: the stubs cannot know DRF moves declared fields off the class.
        source = StrictCharField(  # type: ignore[assignment]
            trim_whitespace=False,
            help_text="Python source with exactly one public, typed function with a docstring.",
        )
        example_arguments = serializers.JSONField(
            required=False, default=dict, help_text="Arguments for the test run in the sandbox (a JSON object)."
        )

    @extend_schema_serializer(component_name="ToolCreated")
    class CreatedOutputSerializer(ToolOutputSerializer):
        test_output = serializers.CharField(help_text="What the test run in the sandbox returned.")

    @extend_schema(
        operation_id="tools_list",
        summary="The tools the caller may see (with tools.view_tool: all; others: approved ones and their own)",
        responses=ToolOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.tool_list_visible(user=request.user), request, view=self)
        return paginator.get_paginated_response(ToolOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="tools_create",
        summary="Create a Python tool: validated, test-run in the sandbox, stored pending approval",
        request=InputSerializer,
        responses={
            status.HTTP_201_CREATED: CreatedOutputSerializer,
            status.HTTP_400_BAD_REQUEST: BAD_REQUEST,
            status.HTTP_403_FORBIDDEN: FORBIDDEN,
        },
    )
    def post(self, request: Request) -> Response:
        if not request.user.has_perm("tools.add_tool"):
            raise PermissionDenied("You may not create tools (permission tools.add_tool).")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tool, output = services.tool_create_python(
            source=serializer.validated_data["source"],
            example_arguments=serializer.validated_data["example_arguments"],
            created_by=_user(request),
        )
        data = {**ToolOutputSerializer(tool).data, "test_output": output}
        return Response(data, status=status.HTTP_201_CREATED)


class ToolDetailApi(APIView):
    @extend_schema(
        operation_id="tools_retrieve",
        summary="One tool",
        responses={status.HTTP_200_OK: ToolOutputSerializer, status.HTTP_404_NOT_FOUND: NOT_FOUND},
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(ToolOutputSerializer(_visible_tool(request, name)).data)


class ToolInvokeApi(APIView):
    @extend_schema_serializer(component_name="ToolInvoke")
    class InputSerializer(serializers.Serializer):
        arguments = serializers.JSONField(default=dict, help_text="Arguments matching the tool's JSON schema.")

    @extend_schema_serializer(component_name="ToolInvokeResult")
    class OutputSerializer(serializers.Serializer):
        status = serializers.CharField(help_text="ok, error, timeout, invalid or denied.")
        result = serializers.CharField(allow_blank=True)
        error = serializers.CharField(allow_blank=True)
        duration_ms = serializers.IntegerField()
        invocation_id = serializers.IntegerField(allow_null=True)

    @extend_schema(
        operation_id="tools_invoke",
        summary="Call an approved tool directly (recorded like an agent's call)",
        request=InputSerializer,
        responses={
            status.HTTP_200_OK: OutputSerializer,
            status.HTTP_400_BAD_REQUEST: BAD_REQUEST,
            status.HTTP_403_FORBIDDEN: FORBIDDEN,
            status.HTTP_404_NOT_FOUND: NOT_FOUND,
        },
    )
    def post(self, request: Request, name: str) -> Response:
        tool = _visible_tool(request, name)
        if not request.user.has_perm("tools.invoke_tool"):
            raise PermissionDenied("You may not invoke tools directly (permission tools.invoke_tool).")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        spec = selectors.tool_spec(tool)
        outcome = async_to_sync(invoke)(
            spec, serializer.validated_data["arguments"], context=CallContext(user_id=request.user.pk)
        )
        data = self.OutputSerializer(outcome).data
        if outcome.status == ToolInvocation.Status.INVALID:
            return Response({**data, "detail": outcome.error}, status=status.HTTP_400_BAD_REQUEST)
        if outcome.status == ToolInvocation.Status.DENIED:
            return Response({**data, "detail": outcome.error}, status=status.HTTP_403_FORBIDDEN)
        return Response(data)


class InvocationListApi(APIView):
    pagination_class = LimitOffsetPagination

    class FilterSerializer(serializers.Serializer):
        tool = serializers.CharField(
            required=False, allow_blank=True, help_text="Only the calls of this tool (empty: all)."
        )

    @extend_schema(
        operation_id="tools_invocations_list",
        summary="Tool calls, newest first (with tools.view_toolinvocation: all; others: the calls made for them)",
        parameters=[FilterSerializer],
        responses=InvocationOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        tool = None
        if name := filters.validated_data.get("tool"):
            # A filter naming no tool is bad input (400), like an unknown agent on memory lists.
            tool = selectors.tool_get_visible(user=request.user, name=name)
            if tool is None:
                raise serializers.ValidationError(
                    {"tool": [f"There is no tool named {name[:100]!r} that you may see."]}
                )
        paginator = self.pagination_class()
        calls = selectors.invocation_list(user=request.user, tool=tool)
        page = paginator.paginate_queryset(calls, request, view=self)
        return paginator.get_paginated_response(InvocationOutputSerializer(page, many=True).data)


class ApprovalAnswerApi(APIView):
    @extend_schema_serializer(component_name="ToolApprovalAnswer")
    class InputSerializer(serializers.Serializer):
        approve = StrictBooleanField(help_text="true: let the call run; false: deny it (the agent is told).")

    @extend_schema_serializer(component_name="ToolApproval")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.CharField(help_text="approved or denied.")

    @extend_schema(
        operation_id="tools_approvals_answer",
        summary="Answer a tool call waiting for approval in one of the caller's conversations",
        request=InputSerializer,
        responses={
            status.HTTP_200_OK: OutputSerializer,
            status.HTTP_400_BAD_REQUEST: BAD_REQUEST,
            status.HTTP_404_NOT_FOUND: OpenApiResponse(description="No such pending request of the caller's."),
            status.HTTP_409_CONFLICT: OpenApiResponse(description="The request was already answered or expired."),
        },
    )
    def post(self, request: Request, approval_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        approval = services.tool_approval_answer(
            approval_id=approval_id, user=_user(request), approve=serializer.validated_data["approve"]
        )
        return Response(self.OutputSerializer(approval).data)
