"""The sockets of a caller's pool manager or session, seen through audit events.

Our own connection classes register each socket with the connection attempt
before it connects (``_connect``), so ``close()`` and ``reconnect()`` can
shut it down at any step. A caller's ``pool_manager=`` or ``session=`` makes
its connections with urllib3's classes, or its adapter's, inside its own
``urlopen()`` or ``send()``: nothing of ours runs between the connect and the
response. CPython raises an audit event before a socket connects
(``socket.connect``) and, from Python 3.10, when http.client sends a request
(``http.client.send``, also on a connection reused from the pool); while a
request goes out through such a pool, :func:`sockets_watched` registers the
socket of the latest of those events of the sending thread with the attempt.

One socket at a time: each event means the request has moved on (to the
next address, the next redirect, a reused connection), and a redirect's
connection may already be back in the caller's pool, where another thread's
request may take it. When the send returns, the socket is let go: from
then on the response itself is registered. A socket that other code
connects on the same thread in the middle of the send (a logging handler's,
say) is registered until the request's next event; a ``close()`` exactly
then would shut it down.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any, Optional

from ._connect import Attempt

__all__ = ["sockets_watched"]

log = logging.getLogger("ssesync")

_hook_installed = False
_hook_lock = threading.Lock()
_current = threading.local()


class _Watch:
    """The attempt of one send, and the one socket registered with it for now."""

    __slots__ = ("attempt", "fd", "registered")

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt
        self.fd = -1  # the descriptor of the socket watched
        self.registered: Optional[socket.socket] = None  # a duplicate of it

    def watch(self, sock: socket.socket) -> None:
        """From now on ``sock`` is the request's socket (a duplicate: TLS moves descriptors)."""
        fd = sock.fileno()
        if fd == self.fd and self.registered is not None:
            return  # (each block of a request body is an event of its own)
        self.let_go()
        self.registered = self.attempt.attach_socket(sock, duplicate=True)
        self.fd = fd

    def let_go(self) -> None:
        registered, self.registered, self.fd = self.registered, None, -1
        if registered is not None:
            self.attempt.detach_socket(registered)


@contextlib.contextmanager
def sockets_watched(attempt: Attempt) -> Iterator[None]:
    """While the block sends a request through a caller's pool, register its socket.

    The audit hook is installed once per process, when first needed; for
    every other audit event of the process it costs a comparison.
    """
    global _hook_installed
    if not _hook_installed:
        with _hook_lock:
            if not _hook_installed:
                sys.addaudithook(_on_audit)
                _hook_installed = True
    watch = _Watch(attempt)
    _current.watch = watch
    try:
        yield
    finally:
        _current.watch = None
        watch.let_go()


def _on_audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect" and event != "http.client.send":
        return
    watch: Optional[_Watch] = getattr(_current, "watch", None)
    if watch is None:
        return
    try:
        sock = args[0] if event == "socket.connect" else getattr(args[0], "sock", None)
        if isinstance(sock, socket.socket):
            watch.watch(sock)
    except Exception:  # an audit hook must never fail the operation it watches
        log.debug("cannot watch a socket of a request through a caller's pool", exc_info=True)
