"""Retrieval quality on a small labelled set: the real local embedder (MiniLM int8) and the embedded
store behind ``experiences_retrieve_similar``, with the full ranking (similarity, recency,
importance, weight). Queries are paraphrases, not copies, and the set has near-miss distractors
(several memories about servers, failures, schedules)."""

from __future__ import annotations

import pytest

from memory import services
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_vector_store")]

EXPERIENCES = {
    "backup_disk": "The nightly database backup failed because the backup disk was full.",
    "backup_schedule": "Backups run every night at 02:00 UTC and are kept for 30 days.",
    "deploy_tuesday": "Production deployments happen on Tuesdays after the standup.",
    "deploy_rollback": "We rolled back release 4.2 because the login page returned 500 errors.",
    "python_version": "The deploy script requires Python 3.11; it breaks on 3.12.",
    "redis_bind": "Redis must only listen on 127.0.0.1, never on a public interface.",
    "postgres_vacuum": "Autovacuum on the orders table was tuned after queries slowed down.",
    "ssl_renewal": "The TLS certificate for api.example.com expires every 90 days and renews via certbot.",
    "user_colour": "The user's favourite colour is teal.",
    "user_language": "The user prefers answers in French.",
    "user_tests": "The user wants pytest tests for every bug fix.",
    "cat_pixel": "The office cat is called Pixel and likes the warm server room.",
    "lunch_friday": "Team lunch is on Fridays at the Thai place around the corner.",
    "oncall_rotation": "On-call rotates weekly; the handover is Monday at 10:00.",
    "flaky_test": "test_checkout is flaky because it depends on the wall clock; freeze time in it.",
    "memory_leak": "The worker leaked memory through an unbounded cache; we capped it at 10,000 entries.",
    "api_rate_limit": "The payment provider's API allows 100 requests per minute; we back off on HTTP 429.",
    "docs_location": "Architecture decisions are written down in docs/adr/ as numbered markdown files.",
    "vpn_access": "New employees need a VPN certificate from IT before they can reach staging.",
    "budget_q3": "The Q3 cloud budget is 12,000 euros; GPU instances need approval first.",
    "timezone_bug": "Invoices showed the wrong date because timestamps were stored without a time zone.",
    "css_dark_mode": "Dark mode colours are defined as CSS custom properties in app.css.",
    "staging_port": "The staging server listens on port 8081 behind nginx.",
    "celery_broker": "Celery uses Redis as its broker; results are not stored.",
}

QUERIES = {
    "Why did last night's backup not work?": {"backup_disk"},
    "When are backups taken and how long are they retained?": {"backup_schedule"},
    "Which day of the week do we ship to production?": {"deploy_tuesday"},
    "What went wrong with version 4.2?": {"deploy_rollback"},
    "Which Python version does deployment need?": {"python_version"},
    "Is it safe to expose Redis on the internet?": {"redis_bind"},
    "How does the HTTPS certificate get renewed?": {"ssl_renewal"},
    "What colour does the user like?": {"user_colour"},
    "In which language should I reply to the user?": {"user_language"},
    "What is the name of the office pet?": {"cat_pixel"},
    "Why does the checkout test fail randomly?": {"flaky_test"},
    "The payment API returns too many requests errors, what is the limit?": {"api_rate_limit"},
    "Where do we record architecture decisions?": {"docs_location"},
    "How can a new hire get access to staging?": {"vpn_access", "staging_port"},
    "Why were invoice dates off by a day?": {"timezone_bug"},
    "What does Celery use as a message broker?": {"celery_broker", "redis_bind"},
    "How much can we spend on cloud this quarter?": {"budget_q3"},
    "Why did the worker process keep growing in RAM?": {"memory_leak"},
}


def test_recall_at_5_on_the_labelled_set() -> None:
    user = factories.user()
    ids = {key: services.experience_store(text=text, owner=user).pk for key, text in EXPERIENCES.items()}
    names = {pk: key for key, pk in ids.items()}

    recalls, first_hits = [], 0
    misses = []
    for query, expected in QUERIES.items():
        found = [names[r.experience.pk] for r in services.experiences_retrieve_similar(context=query, user=user, k=5)]
        hit = expected & set(found)
        recalls.append(len(hit) / len(expected))
        first_hits += found[0] in expected
        if hit != expected:
            misses.append((query, sorted(expected - hit), found))

    recall_at_5 = sum(recalls) / len(recalls)
    print(f"recall@5 = {recall_at_5:.3f}, precision@1 = {first_hits / len(QUERIES):.3f}, misses: {misses}")
    assert len(EXPERIENCES) >= 20 and len(QUERIES) >= 10
    assert recall_at_5 >= 0.9, misses
    # The best match is the expected one for nearly every query (precision@1).
    assert first_hits / len(QUERIES) >= 0.85, misses
