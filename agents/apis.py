"""Read-only REST endpoints for the agents and teams a conversation can talk to.

One API class per operation, nested output serializers (HackSoft Django-Styleguide). A model
config is shown by name and provider only: its API key never leaves the server.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import selectors
from agents.models import Team
from config.rest import LimitOffsetPagination


@extend_schema_serializer(component_name="ModelConfigSummary")
class ModelConfigSummarySerializer(serializers.Serializer):
    name = serializers.CharField()
    provider = serializers.CharField()


class AgentListApi(APIView):
    pagination_class = LimitOffsetPagination

    @extend_schema_serializer(component_name="Agent")
    class OutputSerializer(serializers.Serializer):
        slug = serializers.CharField()
        name = serializers.CharField()
        description = serializers.CharField()
        capabilities = serializers.ListField(child=serializers.CharField())
        model_config = ModelConfigSummarySerializer()
        tool_names = serializers.ListField(child=serializers.CharField())

    @extend_schema(operation_id="agents_list", summary="Agents to talk to", responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.agent_list(), request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class TeamListApi(APIView):
    pagination_class = LimitOffsetPagination

    @extend_schema_serializer(component_name="Team")
    class OutputSerializer(serializers.Serializer):
        slug = serializers.CharField()
        name = serializers.CharField()
        description = serializers.CharField()
        kind = serializers.ChoiceField(choices=Team.Kind.choices)
        participants = serializers.SerializerMethodField(help_text="Agent slugs in speaking order.")
        max_messages = serializers.IntegerField(allow_null=True)
        stop_word = serializers.CharField(allow_blank=True)

        @extend_schema_field(serializers.ListField(child=serializers.CharField()))
        def get_participants(self, team: Team) -> list[str]:
            # ``members`` is prefetched in position order by ``selectors.team_list``.
            return [member.agent.slug for member in team.members.all()]

    @extend_schema(operation_id="teams_list", summary="Teams to talk to", responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.team_list(), request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)
