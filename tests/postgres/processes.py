"""Worker processes of tests/integration/process_app.py for the PostgreSQL process tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

APP_DIR = Path(__file__).parent.parent / "integration"  # process_app.py: the worker program


class Workers:
    """Worker processes of process_app.py on a URL; any left are killed at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, list[str]] = {}
        self.readers: list[threading.Thread] = []

    def start(self, concurrency: int = 10, url: str | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, str(APP_DIR / "process_app.py"), "all", str(concurrency)],
            env={**os.environ, "CONVEYOR_URL": url or self.url, "PYTHONPATH": str(APP_DIR)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        lines = self.logs[proc.pid] = []
        reader = threading.Thread(target=self._read, args=(proc, lines), daemon=True)
        reader.start()
        self.readers.append(reader)
        return proc

    @staticmethod
    def _read(proc: subprocess.Popen[bytes], lines: list[str]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            lines.append(raw.decode(errors="replace"))

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        return "".join(self.logs[proc.pid])

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait(10)
        for reader in self.readers:
            reader.join(10)
        for proc in self.procs:
            if proc.stderr:
                proc.stderr.close()
