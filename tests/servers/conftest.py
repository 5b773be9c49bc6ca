"""The fixtures of the real-server tier: a running stack per param, a key per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from .stacks import STACKS, Stack, start_stack


@pytest.fixture(scope="session", params=STACKS)
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A running server stack (once per session and stack), for every scenario."""
    with start_stack(request.param) as running:
        yield running


@pytest.fixture
def key() -> str:
    """A key of this test's own, so that its log and acks on a shared stack are its alone."""
    return uuid.uuid4().hex[:12]
