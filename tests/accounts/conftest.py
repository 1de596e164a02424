from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    # Request limits count in the cache: every test starts from zero.
    cache.clear()
    yield
    cache.clear()
