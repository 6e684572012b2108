"""A client that writes to a real PostgreSQL and counts what it loses.

Each write is one committed INSERT of a row numbered by the client; a row counts as acknowledged
only once PostgreSQL has answered its commit. After an outage (a move, a restart), every
acknowledged row must be in the table: `lost` lists the ones that are not. A write that got no
answer may or may not have landed (`uncertain`); it is not a loss either way. The downtime a client
saw is the longest gap between two acknowledged writes.

It drives the host's `psql` (Debian's postgresql-client), one connection per write, as an
application reconnecting after every failure would.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field


@dataclass
class RowCounter:
    host: str
    password: str
    port: int = 5432
    acknowledged: list[int] = field(default_factory=list)
    uncertain: list[int] = field(default_factory=list)
    acked_at: list[float] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sql(self, statement: str, timeout: float = 5) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["psql", "-h", self.host, "-p", str(self.port), "-U", "postgres", "-d", "postgres",
             "-v", "ON_ERROR_STOP=1", "-tAc", statement],
            capture_output=True, text=True, timeout=timeout, check=False,
            env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "2"},
        )  # fmt: skip

    def create_table(self) -> None:
        made = self.sql("CREATE TABLE IF NOT EXISTS rows (n integer PRIMARY KEY, at timestamptz DEFAULT now())")
        assert made.returncode == 0, made.stderr

    def start(self) -> None:
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _write(self) -> None:
        n = 0
        while not self.stopped.is_set():
            n += 1
            try:
                done = self.sql(f"INSERT INTO rows (n) VALUES ({n})")
            except subprocess.TimeoutExpired:
                self.uncertain.append(n)
                continue
            if done.returncode == 0:
                self.acknowledged.append(n)
                self.acked_at.append(time.monotonic())
            elif "could not connect" in done.stderr or "Connection refused" in done.stderr:
                time.sleep(0.05)  # nothing was sent: not even uncertain
            else:
                self.uncertain.append(n)
                time.sleep(0.05)

    def present(self) -> set[int]:
        read = self.sql("SELECT n FROM rows", timeout=30)
        assert read.returncode == 0, read.stderr
        return {int(line) for line in read.stdout.split()}

    def lost(self) -> list[int]:
        return sorted(set(self.acknowledged) - self.present())

    def longest_gap(self) -> float:
        """Seconds between the two acknowledged writes furthest apart: the downtime clients saw."""
        return max((b - a for a, b in zip(self.acked_at, self.acked_at[1:], strict=False)), default=0.0)
