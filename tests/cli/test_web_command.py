"""`conveyor web` really serves the API, with the tokens it was given."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpers import wait_until

pytest.importorskip("conveyor.web")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_web_serves_the_api_with_its_tokens(tmp_path: Path) -> None:
    port = free_port()
    command = [
        sys.executable, "-m", "conveyor.cli", "web", "--url", f"sqlite:///{tmp_path}/w.db",
        "--port", str(port), "--token", "s3cret:view",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ})  # fmt: skip
    try:
        stats = f"http://127.0.0.1:{port}/api/stats"
        wait_until(lambda: status(stats, "s3cret") == 200, 30, "the server to answer")
        assert status(stats) == 401
        assert status(stats, "wrong") == 401
    finally:
        proc.terminate()
        proc.wait(10)


def test_web_refuses_a_bad_token_option() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "web", "--url", "memory://", "--token", "x:admin"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--token" in done.stderr and "Traceback" not in done.stderr
