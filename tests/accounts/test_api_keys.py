"""API keys: only a hash is stored, the key is shown once, and a user sees and revokes only their own."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from config.accounts import services
from config.accounts.models import ApiKey, key_digest
from tests import factories

pytestmark = pytest.mark.django_db
LIST = "/api/conversations/"
PAGE = "/accounts/api-keys/"


def _api(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_a_new_key_is_stored_only_as_its_hash_and_authenticates() -> None:
    user = factories.user("alice")
    api_key, key = services.api_key_create(user=user, name="CI")

    assert key.startswith("lds_") and len(key) > 40
    stored = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert key not in {str(v) for v in stored.values()}
    assert stored["digest"] == key_digest(key) and key.startswith(stored["prefix"])
    assert api_key.last_used_at is None

    assert _api(key).get(LIST).status_code == 200
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


@pytest.mark.parametrize("spoil", ["revoke", "expire", "deactivate", "tamper"])
def test_revoked_expired_tampered_keys_and_inactive_users_get_401(spoil: str) -> None:
    user = factories.user("alice")
    api_key, key = services.api_key_create(user=user, name="CI")
    if spoil == "revoke":
        services.api_key_revoke(api_key=api_key)
    elif spoil == "expire":
        ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif spoil == "deactivate":
        User.objects.filter(pk=user.pk).update(is_active=False)
    else:
        key = key[:-1] + ("A" if key[-1] != "A" else "B")  # same prefix, wrong secret

    response = _api(key).get(LIST)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": "Invalid API key (unknown, expired or revoked)."}


def test_a_key_needs_a_name_and_a_future_expiry() -> None:
    user = factories.user("alice")
    with pytest.raises(Exception, match="name"):
        services.api_key_create(user=user, name="  ")
    with pytest.raises(Exception, match="future"):
        services.api_key_create(user=user, name="x", expires_at=timezone.now() - timedelta(days=1))
    assert not ApiKey.objects.exists()


# --- the page


def test_the_page_needs_a_login() -> None:
    assert Client().get(PAGE).status_code == 302
    assert Client().post(PAGE, {"name": "x"}).status_code == 302
    assert not ApiKey.objects.exists()


def test_the_page_creates_a_key_shows_it_once_and_lists_it() -> None:
    user = factories.user("alice")
    client = Client()
    client.force_login(user)

    response = client.post(PAGE, {"name": "laptop", "expires_days": "30"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    api_key = ApiKey.objects.get(user=user)
    html = response.content.decode()
    key = html.split('id="new-api-key"')[0].rsplit('value="', 1)[1].split('"', 1)[0]
    assert key_digest(key) == api_key.digest
    assert api_key.expires_at is not None and timedelta(days=29) < api_key.expires_at - timezone.now() <= timedelta(
        days=30
    )

    listing = client.get(PAGE).content.decode()
    assert "laptop" in listing and api_key.prefix in listing
    assert key not in listing  # shown once: never again


def test_the_htmx_post_answers_with_the_panel_and_bad_input_with_422() -> None:
    user = factories.user("alice")
    client = Client()
    client.force_login(user)

    created = client.post(PAGE, {"name": "ci"}, HTTP_HX_REQUEST="true")
    assert created.status_code == 200
    assert 'id="api-keys-panel"' in created.content.decode() and "<html" not in created.content.decode()

    bad = client.post(PAGE, {"name": "", "expires_days": "0"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 422
    assert "field-error" in bad.content.decode()
    assert ApiKey.objects.count() == 1


def test_a_user_never_sees_or_revokes_another_users_keys() -> None:
    alice, mallory = factories.user("alice"), factories.user("mallory")
    alices_key, key = services.api_key_create(user=alice, name="alice-secret-name")
    client = Client()
    client.force_login(mallory)

    assert "alice-secret-name" not in client.get(PAGE).content.decode()
    assert client.post(f"{PAGE}{alices_key.pk}/revoke/").status_code == 404
    assert client.post(f"{PAGE}{alices_key.pk}/revoke/", HTTP_HX_REQUEST="true").status_code == 404
    assert Client().post(f"{PAGE}{alices_key.pk}/revoke/").status_code == 302  # anonymous: to the login
    alices_key.refresh_from_db()
    assert alices_key.revoked_at is None
    assert _api(key).get(LIST).status_code == 200


def test_the_owner_revokes_a_key_and_it_stops_working() -> None:
    alice = factories.user("alice")
    api_key, key = services.api_key_create(user=alice, name="old")
    client = Client()
    client.force_login(alice)

    response = client.post(f"{PAGE}{api_key.pk}/revoke/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "it no longer works" in response.content.decode()
    assert _api(key).get(LIST).status_code == 401
    assert "old" not in client.get(PAGE).content.decode().split("<tbody>")[1]


def test_the_sidebar_links_to_the_page() -> None:
    client = Client()
    client.force_login(factories.user("alice"))
    assert f'href="{PAGE}"' in client.get("/conversations/").content.decode()


# --- commands


def test_create_api_key_prints_a_working_key_once() -> None:
    user = factories.user("alice")
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "alice", "--name", "deploy", "--expires-days", "7", stdout=out, stderr=err)

    key = out.getvalue().strip()
    api_key = ApiKey.objects.get(user=user, name="deploy")
    assert api_key.digest == key_digest(key) and api_key.expires_at is not None
    assert "not shown again" in err.getvalue()
    assert _api(key).get(LIST).status_code == 200
    with pytest.raises(CommandError, match="No user"):
        call_command("create_api_key", "nobody", "--name", "x", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="at least 1"):
        call_command("create_api_key", "alice", "--name", "x", "--expires-days", "0", stdout=io.StringIO())


def test_revoke_api_key_lists_and_revokes_by_prefix() -> None:
    user = factories.user("alice")
    api_key, key = services.api_key_create(user=user, name="deploy")
    out = io.StringIO()
    call_command("revoke_api_key", "alice", stdout=out)
    assert api_key.prefix in out.getvalue() and "deploy" in out.getvalue()

    call_command("revoke_api_key", "alice", api_key.prefix, stdout=io.StringIO())
    assert _api(key).get(LIST).status_code == 401
    with pytest.raises(CommandError, match="0 keys"):
        call_command("revoke_api_key", "alice", api_key.prefix, stdout=io.StringIO())


# --- existing DRF tokens


@pytest.mark.django_db(transaction=True)
def test_the_migration_hashes_existing_drf_tokens_and_deletes_the_plaintext() -> None:
    user = factories.user("legacy")
    old_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token"
            " (key varchar(40) PRIMARY KEY, created datetime NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
            [old_key, "2025-01-02 03:04:05", user.pk],
        )
    try:
        executor = MigrationExecutor(connection)
        executor.migrate([("accounts", "0001_initial")])
        executor = MigrationExecutor(connection)
        executor.migrate([("accounts", "0002_import_drf_tokens")])

        imported = ApiKey.objects.get(user=user)
        assert imported.digest == key_digest(old_key) and imported.prefix == old_key[:8]
        assert imported.created_at.year == 2025
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM authtoken_token")
            assert cursor.fetchone()[0] == 0  # no plaintext key is left
        assert _api(old_key).get(LIST).status_code == 200  # the client keeps working
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE authtoken_token")
