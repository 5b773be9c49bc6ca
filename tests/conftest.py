"""Shared pytest fixtures for the ssesync test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from ssesync.testing import SSEServer
from tests.helpers import reader_threads, settle

# CI runs a fixed set of examples so a run is reproducible; local runs explore.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def sse_server() -> Iterator[SSEServer]:
    """A started loopback SSE server, stopped (and its threads joined) after the test."""
    with SSEServer() as server:
        yield server


@pytest.fixture(autouse=True)
def no_reader_thread_left() -> Iterator[None]:
    """Every test must leave no source thread running behind it."""
    yield
    assert settle(lambda: not reader_threads()), reader_threads()
