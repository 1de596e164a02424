"""AutoGen component JSON over REST: export a team, import a file (imported teams and agents are
shared by everyone: the import needs the add permission for everything it creates,
``agents.permissions.COMPONENT_IMPORT_PERMISSIONS``). Thin adapters over ``agents.components``."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import components
from agents.models import Team
from agents.permissions import COMPONENT_IMPORT_PERMISSIONS
from config.common.permissions import HasPermission


class TeamExportApi(APIView):
    @extend_schema(
        operation_id="teams_export",
        summary="A team as AutoGen component JSON",
        description=(
            "The format of AutoGen's `dump_component()`, which AutoGen Studio imports. API keys are not included."
        ),
        responses={
            status.HTTP_200_OK: OpenApiTypes.OBJECT,
            status.HTTP_404_NOT_FOUND: OpenApiResponse(description="No such team."),
        },
    )
    def get(self, request: Request, slug: str) -> Response:
        team = get_object_or_404(Team, slug=slug)
        response = Response(components.dump_team(team))
        response["Content-Disposition"] = f'attachment; filename="{team.slug}.json"'
        return response


class ComponentImportApi(APIView):
    permission_classes = [HasPermission(*COMPONENT_IMPORT_PERMISSIONS)]
    parser_classes = [MultiPartParser]

    @extend_schema_serializer(component_name="ComponentImport")
    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(help_text="AutoGen component JSON or an AutoGen Studio gallery, at most 1 MB.")

    @extend_schema_serializer(component_name="ComponentImported")
    class OutputSerializer(serializers.Serializer):
        teams = serializers.ListField(child=serializers.CharField())
        agents = serializers.ListField(child=serializers.CharField())
        model_configs = serializers.ListField(child=serializers.CharField())
        pending_tools = serializers.ListField(
            child=serializers.CharField(), help_text="Python tools created pending an administrator's approval."
        )

    @extend_schema(
        operation_id="components_import",
        summary="Import teams, agents and model clients from AutoGen component JSON",
        description=(
            "All or nothing: an unsupported provider, a tool (tools carry code, which is never run), a file "
            "over 1 MB or nested too deeply is refused with `400` and the reasons under `problems`."
        ),
        request={"multipart/form-data": InputSerializer},
        responses={
            status.HTTP_201_CREATED: OutputSerializer,
            status.HTTP_400_BAD_REQUEST: OpenApiResponse(description="Nothing imported; `problems` says why."),
            status.HTTP_403_FORBIDDEN: OpenApiResponse(
                description="The caller lacks one of " + ", ".join(COMPONENT_IMPORT_PERMISSIONS) + "."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        if upload.size > components.MAX_BYTES:
            problems = [f"The file is {upload.size} bytes; the limit is {components.MAX_BYTES}."]
            return Response({"detail": "Nothing imported.", "problems": problems}, status=status.HTTP_400_BAD_REQUEST)
        try:
            result = components.import_file(upload.read(), by=request.user)  # type: ignore[arg-type]
        except components.ImportRejected as exc:
            return Response(
                {"detail": "Nothing imported.", "problems": exc.problems}, status=status.HTTP_400_BAD_REQUEST
            )
        return Response(result.summary(), status=status.HTTP_201_CREATED)
