"""ASGI entry point: HTTP through Django, WebSockets through Channels.

Django is set up before anything imports models or consumers (cookiecutter-django's order).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from conversations.runner import ServerLoopMiddleware  # noqa: E402
from memory.schedule import start_server_schedule  # noqa: E402
from tools.services import approvals_expire_orphaned  # noqa: E402

application = ServerLoopMiddleware(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    ),
    # After the runner's own recovery (runs a restart interrupted are failed first).
    on_start=[approvals_expire_orphaned, start_server_schedule],
)
