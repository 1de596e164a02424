"""Project configuration: settings, ASGI/Celery entry points, URL and socket routing."""

from .celery import app as celery_app

__all__ = ["celery_app"]
