"""The Firestore mirror against Google's real Firestore emulator (Java), outage included."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from memory import services
from memory.firebase import client as mirror
from memory.firebase.outbox import _INLINE
from memory.models import Experience, MirrorOutbox
from memory.vector import reset_vector_stores
from tests import factories
from tests.servers import free_port, port_open, require_program, stop, wait_until

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

EMULATOR_JAR = Path("/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")
PROJECT = "lodestone-test"


class FirestoreEmulator:
    def __init__(self, java: str, port: int, log: Path) -> None:
        self.java, self.port, self.log = java, port, log
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.java,
                "-cp",
                str(EMULATOR_JAR),
                "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
                "start",
                "--host=127.0.0.1",
                f"--port={self.port}",
            ],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: port_open(self.port), what="Firestore emulator", limit=60, process=self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None
        wait_until(lambda: not port_open(self.port), what="Firestore emulator stopping", limit=20)

    def reset(self) -> None:
        url = f"http://{self.host}/emulator/v1/projects/{PROJECT}/databases/(default)/documents"
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10).read()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirestoreEmulator]:
    java = require_program("java", "apt-get install openjdk-17-jre-headless")
    if not EMULATOR_JAR.is_file():
        require_program("cloud-firestore-emulator-missing", "apt-get install google-cloud-cli-firestore-emulator")
    server = FirestoreEmulator(java, free_port(), tmp_path_factory.mktemp("firestore") / "emulator.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mirrored(emulator: FirestoreEmulator, settings: Any, tmp_path: Path) -> Iterator[FirestoreEmulator]:
    if emulator.process is None:
        emulator.start()
    emulator.reset()
    settings.LODESTONE_FIREBASE_PROJECT_ID = PROJECT
    settings.LODESTONE_FIRESTORE_EMULATOR_HOST = emulator.host
    settings.LODESTONE_FIRESTORE_TIMEOUT_SECONDS = 2
    settings.CELERY_BROKER_URL = None  # the inline drainer
    settings.LODESTONE_VECTOR_DIR = str(tmp_path / "vectors")
    reset_vector_stores()
    mirror.reset_clients()
    yield emulator
    _INLINE.stop()
    mirror.reset_clients()
    reset_vector_stores()


def documents() -> dict[int, dict[str, Any]]:
    return {int(snap.id): snap.to_dict() for snap in mirror.collection().stream(timeout=5)}


def eventually(check: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {limit}s: {what}")
        time.sleep(0.1)


def test_mirror_follows_create_update_consolidate_delete(mirrored: FirestoreEmulator) -> None:
    user = factories.user()
    agent = factories.agent(factories.replay_model(["ok"]), "ops")
    first = services.experience_store(text="The nightly backup failed: the disk was full.", owner=user, agent=agent)
    assert MirrorOutbox.objects.filter(experience_id=first.pk).exists() or first.pk in documents()
    eventually(lambda: first.pk in documents(), "the new experience is mirrored")
    doc = documents()[first.pk]
    assert doc["text"] == first.text and doc["owner_id"] == user.pk and doc["agent"] == "ops"
    assert doc["kind"] == "episodic" and doc["shared"] is False and doc["weight"] == 1.0

    services.experience_update(experience=first, importance=0.9)
    eventually(lambda: documents()[first.pk]["importance"] == 0.9, "the update is mirrored")

    second = services.experience_store(
        text="Backup failed overnight because the disk ran full.", owner=user, agent=agent
    )
    [merged] = services.memory_consolidate(owner=user, threshold=0.6)
    eventually(
        lambda: (
            documents().get(merged.pk, {}).get("sources") == sorted([first.pk, second.pk])
            and documents()[first.pk]["consolidated_into"] == merged.pk
        ),
        "the consolidation and its provenance are mirrored",
    )

    services.experience_delete(experience=merged)
    eventually(lambda: merged.pk not in documents(), "the deletion is mirrored")
    eventually(lambda: documents()[first.pk]["consolidated_into"] is None, "the sources are restored")
    eventually(lambda: not MirrorOutbox.objects.exists(), "the outbox is empty")


def test_outage_delays_the_mirror_and_loses_nothing(mirrored: FirestoreEmulator) -> None:
    user = factories.user()
    before = services.experience_store(text="Written while Firestore was up.", owner=user)
    eventually(lambda: before.pk in documents(), "the first experience is mirrored")

    mirrored.stop()
    during = [services.experience_store(text=f"Written during the outage, number {i}.", owner=user) for i in range(3)]
    services.experience_delete(experience=before)
    # The experiences are stored all the same; their mirror writes wait with a backoff.
    assert Experience.objects.filter(pk__in=[e.pk for e in during]).count() == 3
    eventually(
        lambda: MirrorOutbox.objects.filter(attempts__gte=1).exclude(last_error="").exists(),
        "a failed attempt is recorded",
    )
    eventually(
        lambda: MirrorOutbox.objects.filter(next_attempt_at__isnull=False).count() == MirrorOutbox.objects.count() >= 4,
        "every pending change was tried and waits for its next attempt",
    )

    mirrored.start()  # an empty emulator: what was mirrored before is gone, as after a real data loss
    eventually(
        lambda: {e.pk for e in during} <= set(documents()) and not MirrorOutbox.objects.exists(),
        "the mirror catches up after the restart",
    )
    assert before.pk not in documents()

    # memory_sync rewrites everything and removes documents of experiences that do not exist.
    mirror.collection().document("999999").set({"id": 999999, "text": "stale"}, timeout=5)
    call_command("memory_sync")
    assert set(documents()) == set(Experience.objects.values_list("pk", flat=True))


def test_memory_sync_reports_an_unreachable_firestore(mirrored: FirestoreEmulator) -> None:
    factories.user()
    mirrored.stop()
    with pytest.raises(CommandError, match="Firestore"):
        call_command("memory_sync")
    mirrored.start()


def test_no_outbox_without_firebase_settings(settings: Any, tmp_path: Path) -> None:
    settings.LODESTONE_FIREBASE_PROJECT_ID = ""
    settings.LODESTONE_VECTOR_DIR = str(tmp_path / "vectors")
    reset_vector_stores()
    services.experience_store(text="Not mirrored.", owner=factories.user())
    assert not MirrorOutbox.objects.exists()
    with pytest.raises(CommandError, match="FIREBASE_PROJECT_ID"):
        call_command("memory_sync")
    reset_vector_stores()


def test_emulator_jar_is_where_the_docs_say() -> None:
    if not EMULATOR_JAR.is_file() or shutil.which("java") is None:
        require_program("cloud-firestore-emulator-missing", "apt-get install google-cloud-cli-firestore-emulator")
    assert EMULATOR_JAR.is_file()


def test_a_celery_worker_drains_and_retries_through_an_outage(
    mirrored: FirestoreEmulator, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    from django.conf import settings as django_settings

    from tests.services.conftest import celery_broker, start_celery_worker

    stack = contextlib.ExitStack()

    broker_url = f"{redis_url}/2"
    monkeypatch.setenv("FIREBASE_PROJECT_ID", PROJECT)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", mirrored.host)
    monkeypatch.setenv("FIRESTORE_TIMEOUT_SECONDS", "2")
    log_path = tmp_path / "worker.log"
    worker = start_celery_worker(
        broker_url=broker_url,
        layer_url=f"{redis_url}/3",
        database_path=Path(django_settings.DATABASES["default"]["NAME"]),
        log_path=log_path,
    )
    try:
        wait_until(lambda: "ready." in log_path.read_text(), what="celery worker", limit=60, process=worker)
        stack.enter_context(celery_broker(broker_url))
        settings.CELERY_BROKER_URL = broker_url

        user = factories.user()
        mirrored.stop()
        experience = services.experience_store(text="Stored while Firestore is down, drained by a worker.", owner=user)
        eventually(
            lambda: MirrorOutbox.objects.filter(experience_id=experience.pk, attempts__gte=1).exists(),
            "the worker tried and failed",
        )
        mirrored.start()
        eventually(
            lambda: experience.pk in documents() and not MirrorOutbox.objects.exists(),
            "the worker's retry delivered it",
        )
        assert "memory.mirror_drain" in log_path.read_text()
    finally:
        stack.close()
        stop(worker)
