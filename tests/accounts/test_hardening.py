"""Production settings refuse SQLite and turn HTTPS on; every page carries a strict CSP that the
templates can live with (no inline script, handler or style); seed_demo is safe in production."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from conversations.templatetags.chat import AGENT_HUES
from tests import factories
from tests.servers import REPO

PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "x" * 50,
    "DJANGO_ALLOWED_HOSTS": "lodestone.example.com",
}
PRINT_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT, s.SECURE_PROXY_SSL_HEADER, s.SESSION_COOKIE_SECURE)"
)


def _production(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LODESTONE_", "DATABASE_URL"))}
    full = {
        **clean,
        **PRODUCTION_ENV,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "LODESTONE_VAR_DIR": str(tmp_path),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS], cwd=REPO, env=full, capture_output=True, text=True, check=False
    )


def test_production_refuses_sqlite_unless_explicitly_allowed(tmp_path: Path) -> None:
    sqlite = f"sqlite:///{tmp_path}/db.sqlite3"
    refused = _production(tmp_path, DATABASE_URL=sqlite)
    assert refused.returncode != 0
    assert "LODESTONE_ALLOW_SQLITE_IN_PRODUCTION=true" in refused.stderr

    allowed = _production(tmp_path, DATABASE_URL=sqlite, LODESTONE_ALLOW_SQLITE_IN_PRODUCTION="true")
    assert allowed.returncode == 0, allowed.stderr


def test_production_turns_https_on_by_default_and_reads_the_proxy_header(tmp_path: Path) -> None:
    postgres = "postgres://u:p@127.0.0.1:5432/lodestone"
    default = _production(tmp_path, DATABASE_URL=postgres)
    assert default.returncode == 0, default.stderr
    assert default.stdout.split() == ["31536000", "True", "('HTTP_X_FORWARDED_PROTO',", "'https')", "True"]

    custom = _production(
        tmp_path,
        DATABASE_URL=postgres,
        DJANGO_SECURE_HSTS_SECONDS="0",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_PROXY_SSL_HEADER="none",
    )
    assert custom.returncode == 0, custom.stderr
    assert custom.stdout.split() == ["0", "False", "None", "True"]


# --- Content-Security-Policy


@pytest.mark.django_db
def test_pages_carry_a_strict_content_security_policy() -> None:
    client = Client()
    client.force_login(factories.user("alice"))
    policy = client.get("/conversations/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    assert "Content-Security-Policy" in Client().get("/accounts/login/")


TEMPLATES = sorted((REPO / "templates").rglob("*.html"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(REPO / "templates")))
def test_templates_need_no_inline_script_handler_or_style(template: Path) -> None:
    html = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline <script>: move it to static/js"
    assert not re.search(r"\son[a-z]+=", html), "an on* handler attribute: bind it in static/js"
    assert not re.search(r"\sstyle=", html), "a style attribute: use a class in static/css/app.css"
    assert not re.search(r"<style\b", html), "a <style> element: move it to static/css/app.css"


def test_every_agent_hue_has_its_css_class() -> None:
    css = (REPO / "static" / "css" / "app.css").read_text()
    for hue in AGENT_HUES:
        assert f".hue-{hue} {{ --hue: {hue}; }}" in css


def test_htmx_does_not_inject_its_indicator_style() -> None:
    assert '"includeIndicatorStyles": false' in (REPO / "templates" / "base.html").read_text()


# --- seed_demo


@pytest.mark.django_db(transaction=True)
def test_seed_demo_refuses_production_settings_unless_forced(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    settings.LODESTONE_PRODUCTION = True
    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo", stdout=io.StringIO())
    assert not User.objects.filter(username="demo").exists()
    assert not (tmp_path / "demo-credentials.txt").exists()

    err = io.StringIO()
    call_command("seed_demo", "--force", stdout=io.StringIO(), stderr=err)
    assert "PRODUCTION" in err.getvalue() and "plaintext" in err.getvalue()
    demo = User.objects.get(username="demo")
    assert not demo.is_superuser and not demo.is_staff


@pytest.mark.django_db(transaction=True)
def test_the_demo_user_is_an_admin_only_where_the_setting_says(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    settings.LODESTONE_DEMO_USER_IS_ADMIN = True  # as in config/settings/local.py
    call_command("seed_demo", stdout=io.StringIO())
    assert User.objects.get(username="demo").is_superuser

    settings.LODESTONE_DEMO_USER_IS_ADMIN = False  # anywhere else: demoted on the next run
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    demo = User.objects.get(username="demo")
    assert not demo.is_superuser and not demo.is_staff
    assert "not an admin" in out.getvalue()
