"""The `conveyor` command: loading MODULE:APP, the worker verb's errors, and the demo."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from conveyor import App
from conveyor.cli.commands import cli
from conveyor.cli.demo import run_demo
from conveyor.cli.loading import NOT_FOUND, USAGE, LoadError, load_app, resolve_reference


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
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


def test_loads_an_app_from_the_current_directory(project: str) -> None:
    assert isinstance(load_app(f"{project}:app"), App)
    assert load_app(f"{project}:Holder.app") is load_app(f"{project}:app")


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
    project: str, suffix: str, code: int, words: str
) -> None:
    with pytest.raises(LoadError, match=words) as caught:
        load_app(project + suffix)
    assert caught.value.exit_code == code


def test_a_missing_module_is_not_found(project: str) -> None:
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
    ],
)
def test_worker_errors_are_one_line_without_traceback(
    project: str, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int, words: str
) -> None:
    monkeypatch.delenv("CONVEYOR_APP", raising=False)
    result = CliRunner().invoke(cli, [arg.format(project=project) for arg in args])
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
