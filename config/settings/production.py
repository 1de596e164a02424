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


# --- HTTPS (docs/deployment.md): on by default; behind a TLS-terminating proxy, the proxy must
# set X-Forwarded-Proto (and strip a client's own), or set DJANGO_SECURE_PROXY_SSL_HEADER=none.
SESSION_COOKIE_SECURE = env.get_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
_proxy_ssl_header = env.get_str("DJANGO_SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto")
SECURE_PROXY_SSL_HEADER = (
    None if _proxy_ssl_header.lower() == "none" else ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
)
SECURE_SSL_REDIRECT = env.get_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env.get_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.get_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env.get_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
# A load balancer's plain-HTTP health check would be redirected: exempt its path (regexes).
SECURE_REDIRECT_EXEMPT = env.get_list("DJANGO_SECURE_REDIRECT_EXEMPT", [])

# --- Accounts
LODESTONE_PRODUCTION = True
# SQLite cannot serve several processes (web, Celery workers) safely: refuse it unless asked.
if DATABASES["default"].get("ENGINE") == "django.db.backends.sqlite3" and not env.get_bool(
    "LODESTONE_ALLOW_SQLITE_IN_PRODUCTION", False
):
    raise env.ImproperlyConfiguredEnv(
        "DATABASE_URL names SQLite: use PostgreSQL in production, or set "
        "LODESTONE_ALLOW_SQLITE_IN_PRODUCTION=true to run on SQLite anyway (see docs/deployment.md)."
    )
# `manage.py collectstatic` gathers ours and the npm assets here; whitenoise serves them.
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
