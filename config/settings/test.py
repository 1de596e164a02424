"""Fast, deterministic settings for the test suite."""

from config import env

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR

SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WHITENOISE_USE_FINDERS = True
ALLOWED_HOSTS = ["*"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory: the Celery worker and the live server that tests start as separate
    # processes open the same test database.
    DATABASES["default"]["TEST"] = {"NAME": env.get_str("LODESTONE_TEST_DB", str(VAR_DIR / "test-db.sqlite3"))}

# The bundled SmolLM2-135M for speed; the tests of the default model (tests/e2e/test_default_model.py)
# and of the Qwen models name theirs.
LODESTONE_LOCAL_MODEL = "smollm2-135m"
LODESTONE_CANCEL_POLL_SECONDS = 0.05
LODESTONE_INPUT_POLL_SECONDS = 0.02
# No background consolidation in tests unless a test turns it on: results stay deterministic.
LODESTONE_CONSOLIDATE_INTERVAL_SECONDS = 0

# --- Accounts: no login lockout and no request limits unless a test turns them on (tests of
# those set AXES_ENABLED and the LODESTONE_RATE_* settings themselves).
AXES_ENABLED = False
LODESTONE_RATE_BAD_API_KEYS = ""
LODESTONE_RATE_MESSAGES = ""
LODESTONE_RATE_OPENAI = ""
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
