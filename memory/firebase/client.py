"""The Firestore side of the mirror: one document per experience.

Collection layout (``settings.LODESTONE_FIRESTORE_COLLECTION``, default ``lodestone_experiences``):
document id = the experience's primary key as a string; fields are those of ``experience_document``.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from memory.models import Experience

_LOCK = threading.Lock()
_CLIENTS: dict[tuple[str, str, str], Any] = {}
_APP_NUMBERS = itertools.count()
BATCH_SIZE = 400  # Firestore allows 500 writes per batch


class MirrorError(Exception):
    """Firestore is not configured, not reachable, or refused a write."""


def _credential() -> Any:
    from firebase_admin import credentials

    if settings.LODESTONE_FIRESTORE_EMULATOR_HOST:
        from google.auth.credentials import AnonymousCredentials

        class EmulatorCredential(credentials.Base):  # type: ignore[misc]
            """The emulator takes no credentials, but firebase_admin insists on one."""

            def get_credential(self) -> AnonymousCredentials:
                return AnonymousCredentials()

        return EmulatorCredential()
    if settings.LODESTONE_FIREBASE_CREDENTIALS:
        return credentials.Certificate(settings.LODESTONE_FIREBASE_CREDENTIALS)
    return credentials.ApplicationDefault()


def firestore_client() -> Any:
    """The process-wide Firestore client for the configured project (and emulator, if any)."""
    project = settings.LODESTONE_FIREBASE_PROJECT_ID
    if not project:
        raise MirrorError("The Firestore mirror is off: set FIREBASE_PROJECT_ID.")
    emulator = settings.LODESTONE_FIRESTORE_EMULATOR_HOST or ""
    key = (project, emulator, settings.LODESTONE_FIREBASE_CREDENTIALS or "")
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            import firebase_admin
            from firebase_admin import firestore

            if emulator:
                # The Google client library finds the emulator through this variable only.
                os.environ["FIRESTORE_EMULATOR_HOST"] = emulator
            else:
                os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
            app = firebase_admin.initialize_app(
                _credential(), {"projectId": project}, name=f"lodestone-memory-{next(_APP_NUMBERS)}"
            )
            client = firestore.client(app)
            _CLIENTS[key] = client
        return client


def reset_clients() -> None:
    """Forget clients (tests, settings changes)."""
    with _LOCK:
        _CLIENTS.clear()


def collection() -> Any:
    return firestore_client().collection(settings.LODESTONE_FIRESTORE_COLLECTION)


def experience_document(experience: Experience, source_ids: list[int] | None = None) -> dict[str, Any]:
    """The mirrored fields of one experience (JSON-compatible, timestamps as Firestore times)."""
    return {
        "id": experience.pk,
        "owner_id": experience.owner_id,
        "shared": experience.owner_id is None,
        "agent_id": experience.agent_id,
        "agent": experience.agent.slug if experience.agent else None,
        "conversation_id": experience.conversation_id,
        "run_id": experience.run_id,
        "kind": experience.kind,
        "text": experience.text,
        "importance": float(experience.importance),
        "weight": float(experience.weight),
        "metadata": experience.metadata,
        "consolidated_into": experience.consolidated_into_id,
        "sources": source_ids if source_ids is not None else [],
        "content_hash": experience.content_hash,
        "embedding_model": experience.embedding_model,
        "created_at": experience.created_at,
        "updated_at": experience.updated_at,
    }


def _timeout() -> float:
    return float(settings.LODESTONE_FIRESTORE_TIMEOUT_SECONDS)


def mirror_write(upserts: Iterable[dict[str, Any]], deletes: Iterable[int]) -> None:
    """Apply documents and deletions in batches; raises ``MirrorError`` when Firestore fails."""
    from google.api_core import exceptions as google_exceptions

    coll = collection()
    client = firestore_client()
    ops: list[tuple[str, Any]] = [("set", doc) for doc in upserts] + [("delete", pk) for pk in deletes]
    try:
        for start in range(0, len(ops), BATCH_SIZE):
            batch = client.batch()
            for op, value in ops[start : start + BATCH_SIZE]:
                if op == "set":
                    batch.set(coll.document(str(value["id"])), value)
                else:
                    batch.delete(coll.document(str(value)))
            batch.commit(retry=None, timeout=_timeout())
    except (google_exceptions.GoogleAPIError, google_exceptions.RetryError) as exc:
        reset_clients()  # a fresh channel next time, rather than one stuck in reconnect backoff
        raise MirrorError(f"Firestore write failed: {exc}") from exc


def mirrored_ids() -> set[int]:
    """The experience ids that have a document in the collection."""
    from google.api_core import exceptions as google_exceptions

    try:
        # retry=None: an outage must surface within the timeout, not after the library's minute of retries.
        refs = collection().list_documents(retry=None, timeout=_timeout())
        return {int(ref.id) for ref in refs if ref.id.isdigit()}
    except (google_exceptions.GoogleAPIError, google_exceptions.RetryError) as exc:
        raise MirrorError(f"Firestore listing failed: {exc}") from exc
