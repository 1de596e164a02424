from __future__ import annotations

from django import forms

from agents.selectors import agent_list
from memory.models import Experience


class MemoryFilterForm(forms.Form):
    """The Memory page's search box and filters (GET parameters)."""

    q = forms.CharField(required=False, max_length=2_000, label="Search")
    agent = forms.ModelChoiceField(
        queryset=agent_list(), required=False, to_field_name="slug", empty_label="All agents", label="Agent"
    )
    kind = forms.ChoiceField(choices=[("", "All kinds"), *Experience.Kind.choices], required=False, label="Kind")


class MemoryEditForm(forms.Form):
    """A user's correction of a memory's text (checked again by ``services.experience_update``)."""

    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=100_000, strip=True, label="Memory")
