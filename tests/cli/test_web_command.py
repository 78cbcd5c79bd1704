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


def test_web_without_a_token_makes_one_and_prints_the_link(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "conveyor.cli", "web", "--url", f"sqlite:///{tmp_path}/w.db",
               "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first.startswith(f"Dashboard: http://127.0.0.1:{port}/login?token=")
        token = first.strip().rsplit("=", 1)[1]
        stats = f"http://127.0.0.1:{port}/api/stats"
        wait_until(lambda: status(stats, token) == 200, 30, "the server to answer")
        assert status(stats) == 401  # from this machine too: no open mode unless asked
        assert status(f"http://127.0.0.1:{port}/api/openapi.json") == 401
        assert status(f"http://127.0.0.1:{port}/api/openapi.json", token) == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_open_mode_is_asked_for_warned_and_local_only(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "conveyor.cli", "web", "--url", f"sqlite:///{tmp_path}/w.db"]
    refused = subprocess.run([*base, "--open", "--host", "0.0.0.0"], capture_output=True,
                             text=True, timeout=60, check=False)  # fmt: skip
    assert refused.returncode == 2 and "--open answers only this machine" in refused.stderr
    port = free_port()
    proc = subprocess.Popen([*base, "--open", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("Warning: open mode")
        stats = f"http://127.0.0.1:{port}/api/stats"
        wait_until(lambda: status(stats) == 200, 30, "the server to answer without a token")
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


@pytest.mark.parametrize("url", ["bogus://x", "sqlite:///no/such/dir/w.db"])
def test_web_fails_at_start_when_the_store_cannot_be_opened(url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "web", "--url", url, "--token", "t:view"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and "Traceback" not in done.stderr
