"""Consolidation over time with a broker: Celery beat (embedded in a real worker process with -B)
fires ``memory.consolidate`` on the schedule from the settings, over a real Redis broker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from memory import services
from memory.embeddings import get_embedder
from memory.models import Experience
from memory.vector import reset_vector_stores
from tests import factories
from tests.servers import stop, wait_until
from tests.services.conftest import start_celery_worker

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shared_var_dir(tmp_path: Path, settings: Any) -> Iterator[Path]:
    """The worker and this process share one embedded vector store (and the built models)."""
    get_embedder()  # builds the model if this is the first test to need it
    (tmp_path / "models").symlink_to(Path(settings.LODESTONE_MODEL_DIR), target_is_directory=True)
    settings.LODESTONE_VECTOR_STORE = "embedded"
    settings.LODESTONE_VECTOR_DIR = str(tmp_path / "vectors")
    reset_vector_stores()
    yield tmp_path
    reset_vector_stores()


def test_beat_consolidates_on_schedule(redis_url: str, shared_var_dir: Path, tmp_path: Path) -> None:
    user = factories.user()
    for text in [
        "The nightly backup failed because the disk was full.",
        "The nightly backup job failed since the disk is full.",
    ]:
        services.experience_store(text=text, owner=user)
    log_path = tmp_path / "worker.log"
    worker = start_celery_worker(
        broker_url=f"{redis_url}/2",
        layer_url=f"{redis_url}/3",
        database_path=Path(django_settings.DATABASES["default"]["NAME"]),
        log_path=log_path,
        extra_args=["-B", "--schedule", str(tmp_path / "beat-schedule")],
        extra_env={"LODESTONE_VAR_DIR": str(shared_var_dir), "LODESTONE_CONSOLIDATE_INTERVAL_SECONDS": "1"},
    )
    try:
        wait_until(lambda: "ready." in log_path.read_text(), what="celery worker", limit=60, process=worker)
        deadline = time.monotonic() + 60
        while not Experience.objects.filter(kind="semantic", owner=user).exists():
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        stop(worker)
    log = log_path.read_text()
    assert "Scheduler: Sending due task memory-consolidate (memory.consolidate)" in log
    merged = Experience.objects.get(kind="semantic", owner=user)
    assert len(merged.metadata["consolidated_from"]) == 2
    # The worker wrote the merged memory's vector into the shared store: recall finds it here.
    found = services.experiences_retrieve_similar(context="why did the backup fail", user=user)
    assert found[0].experience.pk == merged.pk
