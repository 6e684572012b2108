"""A loopback TCP proxy that can freeze: connections stay open but no byte passes, as in a
half-open network partition, the way watch streams die silently."""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class FreezableProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self.frozen = threading.Event()
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        with a, b:
            while not self.closed.is_set():
                if self.frozen.is_set():
                    self.closed.wait(0.1)
                    continue
                readable, _, _ = select.select([a, b], [], [], 0.1)
                for source in readable:
                    try:
                        data = source.recv(65536)
                        if data:
                            (b if source is a else a).sendall(data)
                    except OSError:  # a side reset the connection: it ends here, as a closed one does
                        return
                    if not data:
                        return

    def close(self) -> None:
        self.closed.set()
        with contextlib.suppress(OSError):
            self.listener.close()
