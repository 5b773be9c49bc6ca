"""Shared pytest fixtures for the ssesync test suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ssesync.testing import SSEServer


@pytest.fixture
def sse_server() -> Iterator[SSEServer]:
    """A started loopback SSE server, stopped (and its threads joined) after the test."""
    with SSEServer() as server:
        yield server
