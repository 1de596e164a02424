"""Embedded defaults for one machine: what `make run` uses."""

from .base import *  # noqa: F403
from .base import SECRET_KEY as _SECRET_KEY
from .base import VAR_DIR

DEBUG = True
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

if not _SECRET_KEY:
    # A per-installation key kept under var/ (git-ignored), so sessions survive restarts
    # without anyone having to invent a secret for a local install.
    _key_file = VAR_DIR / "secret_key"
    if not _key_file.exists():
        from django.core.management.utils import get_random_secret_key

        _key_file.write_text(get_random_secret_key())
        _key_file.chmod(0o600)
    SECRET_KEY = _key_file.read_text().strip()

# The local demo user may open the admin to edit agents and teams.
LODESTONE_DEMO_USER_IS_ADMIN = True
