"""A minimal forwarding HTTP proxy on loopback, for transport tests.

It handles absolute-form requests (``GET http://host:port/path``), rewritten
to origin form, and ``CONNECT`` tunnels, then relays bytes both ways as they
arrive, so a stream through it is as live as a direct one. It records each
request line so tests can prove traffic went through it, and the
``Proxy-Authorization`` each request carried (``None`` without one).
"""

from __future__ import annotations

import select
import socket
import threading
from urllib.parse import urlsplit


class ForwardProxy:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.request_lines: list[str] = []
        self.proxy_authorizations: list[str | None] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> ForwardProxy:
        self._spawn(self._accept_loop)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in list(self._threads):
            thread.join(5)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self._listener], [], [], 0.05)
            if not readable:
                continue
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._spawn(self._serve, self._track(client))

    def _serve(self, client: socket.socket) -> None:
        try:
            self._forward(client)
        except OSError:
            pass  # either side went away: the relay is over

    def _forward(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(65536)
            if not data:
                return
            head += data
        head, _, rest = head.partition(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.request_lines.append(request_line)
        credentials = [
            h.partition(":")[2].strip()
            for h in header_lines
            if h.lower().startswith("proxy-authorization:")
        ]
        self.proxy_authorizations.append(credentials[0] if credentials else None)
        method, target, version = request_line.split(" ")
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            upstream = self._track(socket.create_connection((host, int(port))))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            parts = urlsplit(target)
            upstream = self._track(socket.create_connection((parts.hostname, parts.port or 80)))
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            kept = [h for h in header_lines if not h.lower().startswith("proxy-")]
            upstream.sendall(
                f"{method} {path or '/'} {version}\r\n".encode("latin-1")
                + "".join(f"{h}\r\n" for h in kept).encode("latin-1")
                + b"\r\n"
                + rest
            )
        self._relay(client, upstream)

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while not self._stop.is_set():
            readable, _, _ = select.select(list(peers), [], [], 0.05)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    for s in (a, b):
                        try:
                            s.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                    return
                peers[sock].sendall(data)
