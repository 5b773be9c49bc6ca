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
socket of the latest of those events of the sending thread with the attempt
(on Python 3.10 and later: see :data:`WATCHED`).

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
import errno
import logging
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any, Optional

from ._connect import Attempt

__all__ = ["sockets_watched"]

log = logging.getLogger("ssesync")

#: Whether requests through a caller's pool are watched at all. Python 3.9
#: raises no ``http.client.send``, so a redirect's second request on a
#: reused connection would leave the first one's connection registered,
#: back in the caller's pool where another thread may use it: there, as
#: before, such a request is reached only once its response exists.
WATCHED = sys.version_info >= (3, 10)

_hook_installed = False
_hook_lock = threading.Lock()
_current = threading.local()


class _Watch:
    """The attempt of one send, and the one socket registered with it for now."""

    __slots__ = ("attempt", "registered", "watched")

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt
        self.watched: Optional[socket.socket] = None  # the request's socket
        self.registered: Optional[socket.socket] = None  # a duplicate of it

    def watch(self, sock: socket.socket) -> None:
        """From now on ``sock`` is the request's socket (a duplicate: TLS moves descriptors).

        The same socket object, not the same descriptor number: a closed
        redirect's number is often the next connection's.
        """
        if sock is self.watched and self.registered is not None:
            return  # (each block of a request body is an event of its own)
        self.let_go()
        self.watched = sock
        self.registered = self.attempt.attach_socket(sock, duplicate=True)

    def let_go(self) -> None:
        registered, self.registered, self.watched = self.registered, None, None
        if registered is not None:
            self.attempt.detach_socket(registered)


@contextlib.contextmanager
def sockets_watched(attempt: Attempt) -> Iterator[None]:
    """While the block sends a request through a caller's pool, register its socket.

    The audit hook is installed once per process, when first needed; for
    every other audit event of the process it costs a comparison.
    """
    if not WATCHED:
        yield
        return
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
    if watch.attempt.aborted and event == "socket.connect":
        # A retry or the next address after close() or reconnect(): fail it
        # here (an audit hook may), as our own connections refuse to connect.
        raise OSError(errno.ECANCELED, "the connection attempt was cancelled")
    try:
        sock = args[0] if event == "socket.connect" else getattr(args[0], "sock", None)
        if isinstance(sock, socket.socket):
            watch.watch(sock)
    except Exception:  # otherwise an audit hook must not fail what it watches
        log.debug("cannot watch a socket of a request through a caller's pool", exc_info=True)
