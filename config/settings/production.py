"""Production: every secret comes from the environment and start-up fails without it."""

from config import env

from .base import *  # noqa: F403
from .base import BASE_DIR

DEBUG = False
SECRET_KEY = env.get_str("DJANGO_SECRET_KEY")
DATABASES = {"default": env.get_database("DATABASE_URL", None) or {}}
if not DATABASES["default"]:
    raise env.ImproperlyConfiguredEnv("Set DATABASE_URL (see .env.example).")
ALLOWED_HOSTS = env.get_list("DJANGO_ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:
    raise env.ImproperlyConfiguredEnv("Set DJANGO_ALLOWED_HOSTS (see .env.example).")

SESSION_COOKIE_SECURE = env.get_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# `manage.py collectstatic` gathers ours and the npm assets here; whitenoise serves them.
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
