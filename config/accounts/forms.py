"""The API keys page's form: it parses input; the rules live in ``accounts.services``."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.utils import timezone

MAX_EXPIRY_DAYS = 3650


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, strip=True)
    expires_days = forms.IntegerField(
        label="Expires after (days)",
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        required=False,
        help_text="Empty: never expires.",
    )

    def expires_at(self) -> datetime | None:
        days: int | None = self.cleaned_data.get("expires_days")
        return timezone.now() + timedelta(days=days) if days else None
