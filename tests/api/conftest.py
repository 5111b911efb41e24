"""Fixtures for the API tests: an HTTP client on the live ``server``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import LiveServer

pytest.register_assert_rewrite("tests.api.support")


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10, verify=False) as c:
        yield c
