"""`conveyor worker` and `conveyor demo`, loading MODULE:APP, the live line, JSON logs, metrics."""

from __future__ import annotations

import functools
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from conveyor import App
from conveyor.cli.commands import cli
from conveyor.cli.demo import run_demo
from conveyor.cli.live import StatusLine
from conveyor.cli.loading import NOT_FOUND, USAGE, LoadError, load_app, resolve_reference
from conveyor.runtime.worker import WorkerStats


@pytest.fixture
def memory_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A project folder (the current directory) with a uniquely named jobs module."""
    name = f"jobs_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "import conveyor\n"
        "app = conveyor.App('memory://')\n"
        "other = 42\n"
        "class Holder:\n"
        "    app = app\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    yield name
    sys.modules.pop(name, None)


def test_loads_an_app_from_the_current_directory(memory_project: str) -> None:
    assert isinstance(load_app(f"{memory_project}:app"), App)
    assert load_app(f"{memory_project}:Holder.app") is load_app(f"{memory_project}:app")


@pytest.mark.parametrize(
    ("suffix", "code", "words"),
    [
        ("", USAGE, "not a MODULE:APP reference"),
        (":", USAGE, "not a MODULE:APP reference"),
        (":missing", NOT_FOUND, "has no attribute 'missing'"),
        (":other", NOT_FOUND, "not a conveyor.App"),
    ],
)
def test_bad_references_give_one_clear_error(
    memory_project: str, suffix: str, code: int, words: str
) -> None:
    with pytest.raises(LoadError, match=words) as caught:
        load_app(memory_project + suffix)
    assert caught.value.exit_code == code


def test_a_missing_module_is_not_found(memory_project: str) -> None:
    with pytest.raises(LoadError, match="no module named 'nowhere_at_all'") as caught:
        load_app("nowhere_at_all:app")
    assert caught.value.exit_code == NOT_FOUND


def test_the_reference_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_APP", "pkg.jobs:app")
    assert resolve_reference(None) == "pkg.jobs:app"
    assert resolve_reference("mine:app") == "mine:app"
    monkeypatch.delenv("CONVEYOR_APP")
    with pytest.raises(LoadError) as caught:
        resolve_reference(None)
    assert caught.value.exit_code == USAGE


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["worker"], 2, "no app given"),
        (["worker", "nowhere_at_all:app"], 1, "no module named"),
        (["worker", "{project}:other"], 1, "not a conveyor.App"),
        (["worker", "{project}:app", "--queues", " , "], 2, "--queues needs"),
        (["worker", "{project}:app", "--processes", "0"], 2, "'--processes'"),
    ],
)
def test_worker_errors_are_one_line_without_traceback(
    memory_project: str, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int, words: str
) -> None:
    monkeypatch.delenv("CONVEYOR_APP", raising=False)
    result = CliRunner().invoke(cli, [arg.format(project=memory_project) for arg in args])
    assert result.exit_code == code
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_demo_runs_to_the_end_by_itself(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, highlight=False)
    code = run_demo(db=tmp_path / "demo.db", emails=5, url=None, console=console)
    text = out.getvalue()
    assert code == 0, text
    assert "created=True, then created=False" in text
    assert "ran one at a time, in order" in text
    assert "card declined" in text
    assert "all 17 jobs reached a final state" in text
    assert (tmp_path / "demo.db").exists()


def test_demo_on_the_memory_store() -> None:
    out = io.StringIO()
    code = run_demo(db=None, emails=2, url="memory://", console=Console(file=out, width=120))
    assert code == 0, out.getvalue()


@pytest.mark.slow
def test_worker_runs_jobs_from_a_project_folder_and_stops_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "myjobs.py").write_text(
        "import conveyor\n"
        "app = conveyor.App('sqlite:///jobs.db', poll_interval=0.1)\n"
        "@app.job\n"
        "def greet(ctx, name):\n"
        "    return 'hello ' + name\n"
    )
    env = {**os.environ, "CONVEYOR_APP": "myjobs:app"}
    env.pop("PYTHONPATH", None)
    enqueue = "import myjobs; print(myjobs.greet.enqueue(name='ada').id)"
    job_id = subprocess.run(
        [sys.executable, "-c", enqueue], cwd=tmp_path, env=env, check=True,
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    command = [sys.executable, "-c", "from conveyor.cli import main; main()", "worker", "-c", "2"]
    worker = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        check = f"import myjobs; j = myjobs.app.jobs.get({job_id!r}); print(j and j.state)"
        deadline = time.monotonic() + 20
        state = ""
        while time.monotonic() < deadline and state != "completed":
            time.sleep(0.2)
            state = subprocess.run(
                [sys.executable, "-c", check], cwd=tmp_path, env=env, check=True,
                capture_output=True, text=True,
            ).stdout.strip()  # fmt: skip
        assert state == "completed"
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=20)
    assert worker.returncode == 0, stderr
    assert "started" in stderr
    assert "stopped" in stderr
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_worker_runs_process_jobs_in_its_children(tmp_path: Path) -> None:
    (tmp_path / "cpujobs.py").write_text(
        "import os\n"
        "import conveyor\n"
        "app = conveyor.App('sqlite:///jobs.db', poll_interval=0.1)\n"
        "@app.job(executor='process')\n"
        "def where(ctx):\n"
        "    return [os.getpid(), os.getppid()]\n"
    )
    env = {**os.environ, "CONVEYOR_APP": "cpujobs:app"}
    env.pop("PYTHONPATH", None)
    run = functools.partial(
        subprocess.run, cwd=tmp_path, env=env, check=True, capture_output=True, text=True
    )
    enqueue = "import cpujobs; print(cpujobs.where.enqueue().id)"
    ids = [run([sys.executable, "-c", enqueue]).stdout.strip() for _ in range(3)]
    command = [sys.executable, "-c", "from conveyor.cli import main; main()", "worker",
               "--processes", "1", "--no-live"]  # fmt: skip
    worker = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        check = (
            f"import cpujobs, json; jobs = [cpujobs.app.jobs.get(i) for i in {ids!r}]; "
            "print(json.dumps([j.result for j in jobs if j.state == 'completed']))"
        )
        deadline = time.monotonic() + 30
        results: list[list[int]] = []
        while time.monotonic() < deadline and len(results) < 3:
            time.sleep(0.2)
            results = json.loads(run([sys.executable, "-c", check]).stdout)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=20)
    assert len(results) == 3, stderr
    assert len({pid for pid, _ in results}) == 1  # one child, reused
    assert results[0][0] != worker.pid
    assert worker.returncode == 0 and "Traceback" not in stderr, stderr


def test_the_live_line_counts_and_rates() -> None:
    stats = WorkerStats()
    now = [100.0]
    line = StatusLine(stats, clock=lambda: now[0], window=10.0)
    assert line.text() == ("processed 0 · succeeded 0 · failed 0 · retried 0 · 0.0/s · in flight 0")
    stats.claimed, stats.succeeded, stats.failed, stats.retried = 14, 8, 1, 1
    now[0] = 105.0
    assert line.text() == (
        "processed 10 · succeeded 8 · failed 1 · retried 1 · 2.0/s · in flight 4"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_worker_json_logs_carry_the_job_and_metrics_are_served(tmp_path: Path) -> None:
    (tmp_path / "logjobs.py").write_text(
        "import logging\n"
        "import conveyor\n"
        "app = conveyor.App('sqlite:///jobs.db', poll_interval=0.1)\n"
        "@app.job\n"
        "def ok(ctx):\n"
        "    logging.getLogger('logjobs').info('working on it')\n"
        "@app.job(max_attempts=1)\n"
        "def bad(ctx):\n"
        "    raise ValueError('kaboom')\n"
    )
    app = App(f"sqlite:///{tmp_path / 'jobs.db'}")
    app.declare("ok")
    app.declare("bad", max_attempts=1)
    ok_id, bad_id = app.enqueue("ok").id, app.enqueue("bad").id
    port = _free_port()
    env = {**os.environ, "CONVEYOR_APP": "logjobs:app"}
    env.pop("PYTHONPATH", None)
    command = [
        sys.executable, "-c", "from conveyor.cli import main; main()", "worker",
        "--log-format", "json", "--metrics-port", str(port), "--metrics-addr", "127.0.0.1",
    ]  # fmt: skip
    worker = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not all(app.jobs.require(i).is_finished for i in (ok_id, bad_id)):
            assert time.monotonic() < deadline, "the worker did not finish the jobs"
            threading.Event().wait(0.05)
        scraped = ""
        while 'conveyor_jobs_failed_total{name="bad",queue="default"} 1.0' not in scraped:
            assert time.monotonic() < deadline, scraped
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
                scraped = page.read().decode()
        assert 'conveyor_jobs_succeeded_total{name="ok",queue="default"} 1.0' in scraped
        assert "conveyor_workers_alive 1.0" in scraped
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=20)
        app.close()
    assert worker.returncode == 0, stderr
    records = [json.loads(line) for line in stderr.splitlines()]
    failure = next(r for r in records if "failed after attempt" in r["message"])
    assert failure["level"] == "error" and failure["logger"] == "conveyor.worker"
    assert (failure["job_id"], failure["job_name"], failure["queue"], failure["attempt"]) == (
        bad_id, "bad", "default", 1,
    )  # fmt: skip
    own = next(r for r in records if r["message"] == "working on it")
    assert (own["job_id"], own["job_name"], own["attempt"]) == (ok_id, "ok", 1)


@pytest.mark.slow
def test_worker_live_line_ends_with_a_summary(tmp_path: Path) -> None:
    (tmp_path / "livejobs.py").write_text(
        "import conveyor\n"
        "app = conveyor.App('sqlite:///jobs.db', poll_interval=0.1)\n"
        "@app.job\n"
        "def ok(ctx):\n"
        "    return 1\n"
    )
    app = App(f"sqlite:///{tmp_path / 'jobs.db'}")
    app.declare("ok")
    handle = app.enqueue("ok")
    env = {**os.environ, "CONVEYOR_APP": "livejobs:app"}
    env.pop("PYTHONPATH", None)
    command = [sys.executable, "-c", "from conveyor.cli import main; main()", "worker", "--live"]
    worker = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert handle.wait(timeout=20).state == "completed"
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=20)
        app.close()
    assert worker.returncode == 0, stderr
    assert "processed 1 · succeeded 1 · failed 0" in stderr
    assert "stopped" in stderr
