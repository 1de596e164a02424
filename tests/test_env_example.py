"""Every environment variable the settings read is documented in .env.example."""

from __future__ import annotations

import re

from tests.servers import REPO


def test_every_setting_variable_is_in_env_example() -> None:
    read = set()
    for path in (REPO / "config").rglob("*.py"):
        read |= set(re.findall(r'env\.get_\w+\(\s*"([A-Z][A-Z0-9_]*)"', path.read_text()))
    documented = (REPO / ".env.example").read_text()
    assert len(read) > 20  # the pattern still finds the settings' reads
    missing = sorted(name for name in read if not re.search(rf"\b{name}=", documented))
    assert not missing, f"Document these in .env.example: {missing}"
