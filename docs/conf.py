"""Sphinx configuration for the ssesync documentation."""

from __future__ import annotations

import os
import sys

# Document the checkout this file belongs to, installed or not.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import ssesync  # noqa: E402

project = "ssesync"
author = "the ssesync authors"
copyright = "the ssesync authors"
version = release = ssesync.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build"]
root_doc = "index"
html_theme = "furo"
html_title = f"ssesync {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"

# -- doctests ---------------------------------------------------------------
# Every page that has doctests gets a loopback SSE server as ``server`` with a
# few routes, so the examples run for real and fast. The pages show
# ``server.url_for("/stream")`` where a real program has its own URL.

doctest_global_setup = r'''
import json

from ssesync import EventSource, ReadyState, SSEClient
from ssesync import SSEConnectionError, SSEError, SSEParsingError
from ssesync.testing import SSEServer

def _chat(conn):
    """An OpenAI-style completion stream that echoes the prompt word by word."""
    prompt = json.loads(conn.request.body)["messages"][-1]["content"]
    for word in prompt.split():
        chunk = {"choices": [{"delta": {"content": word + " "}}]}
        conn.event(json.dumps(chunk))
    conn.event("[DONE]")
    conn.end()

_STREAM = [
    {"data": "hello", "id": "1"},
    {"event": "update", "data": '{"price": 42}', "id": "2"},
    {"data": "bye", "id": "3"},
]

server = SSEServer().start()
server.route("/stream", SSEServer.events(_STREAM))
server.route("/chat", _chat)
server.route("/missing", SSEServer.status(404, body="no such stream"))
server.route(
    "/flaky",
    SSEServer.events(_STREAM[:2]),   # first connection: two events, then the end
    SSEServer.events(_STREAM),       # then a server that replays everything
)
'''

doctest_global_cleanup = "server.stop()"
