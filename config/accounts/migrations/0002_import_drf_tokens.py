"""Existing DRF tokens (``rest_framework.authtoken``, plaintext keys) become hashed API keys, so
clients that use them keep working; then the plaintext rows are deleted.

The authtoken app is no longer installed, so its table is read with plain SQL, and only if it is
there (a new installation has none). The emptied table is left in place: dropping it would leave
authtoken's migrations recorded as applied for a table that no longer exists.
"""

import hashlib
from datetime import UTC, datetime

from django.db import migrations
from django.utils import timezone
from django.utils.dateparse import parse_datetime

TABLE = "authtoken_token"


def _aware(value: object) -> datetime:
    created = parse_datetime(value) if isinstance(value, str) else value
    if not isinstance(created, datetime):
        return timezone.now()
    return timezone.make_aware(created, UTC) if timezone.is_naive(created) else created


def import_drf_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if TABLE not in connection.introspection.table_names():
        return
    ApiKey = apps.get_model("accounts", "ApiKey")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {connection.ops.quote_name('key')}, user_id, created FROM {TABLE}")  # noqa: S608
        rows = cursor.fetchall()
    ApiKey.objects.bulk_create(
        ApiKey(
            user_id=user_id,
            name="API token (imported)",
            prefix=key[:8],  # accounts.models.LEGACY_PREFIX_LENGTH at the time of writing
            digest=hashlib.sha256(key.encode()).hexdigest(),
            created_at=_aware(created),
        )
        for key, user_id, created in rows
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}")  # noqa: S608


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(import_drf_tokens, migrations.RunPython.noop)]
