"""Encryption at rest for secrets stored in the database (model API keys).

Fernet (AES-128-CBC + HMAC) with a key derived from LODESTONE_FIELD_ENCRYPTION_KEY, or from
SECRET_KEY when that is not set. Rotating the key makes stored secrets unreadable: re-enter them.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

_PREFIX = "fernet:"


@lru_cache(maxsize=4)
def _fernet(key_material: str) -> Fernet:
    digest = hashlib.sha256(("lodestone-field-encryption:" + key_material).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _current() -> Fernet:
    return _fernet(settings.LODESTONE_FIELD_ENCRYPTION_KEY or settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return _PREFIX + _current().encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored:
        return ""
    if not stored.startswith(_PREFIX):
        raise ValueError("Stored secret is not encrypted; re-enter it.")
    try:
        return _current().decrypt(stored[len(_PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise ValueError("Stored secret cannot be decrypted with the current key; re-enter it.") from exc
