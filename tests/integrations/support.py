"""What the framework integration tests share: importing an example or a docs recipe as
modules of a folder, and reading the dashboard's CSRF token from a page."""

from __future__ import annotations

import importlib
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs" / "integrations"
_FILE_LINE = re.compile(r"^# file: (?P<name>[\w./-]+)$")
_BLOCK = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
_CSRF = re.compile(r'data-csrf="([^"]+)"')


def recipe_files(page: Path) -> dict[str, str]:
    """The files a docs page's recipe is made of: each code block whose first line is
    `# file: NAME`, by NAME (a block may continue a file named before)."""
    files: dict[str, str] = {}
    for block in _BLOCK.finditer(page.read_text()):
        first, _, rest = block["body"].partition("\n")
        match = _FILE_LINE.match(first.strip())
        if match is not None:
            name = match["name"]
            files[name] = files.get(name, "") + rest
    if not files:
        pytest.fail(f"{page} has no code block starting with '# file: NAME'")
    return files


def write_recipe(page: Path, folder: Path) -> list[str]:
    """Write the recipe of `page` into `folder`; the names of the files written."""
    files = recipe_files(page)
    for name, text in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return sorted(files)


@contextmanager
def importable(folder: Path, *modules: str) -> Iterator[dict[str, ModuleType]]:
    """Import `modules` fresh from `folder` (put first on sys.path), and forget them after,
    so examples with common module names (main, jobs) never meet other tests' modules."""
    names = set(modules)

    def forget() -> None:
        for name in list(sys.modules):
            if name.partition(".")[0] in {m.partition(".")[0] for m in names}:
                del sys.modules[name]

    forget()
    sys.path.insert(0, str(folder))
    try:
        importlib.invalidate_caches()
        yield {name: importlib.import_module(name) for name in modules}
    finally:
        sys.path.remove(str(folder))
        forget()


def csrf_token(page_html: str) -> str:
    """The dashboard page's CSRF token (what its scripts send as X-CSRF-Token)."""
    match = _CSRF.search(page_html)
    if match is None:
        pytest.fail("the dashboard page carries no CSRF token")
    return match.group(1)


def assert_worker_command_runs(
    command: list[str], cwd: Path, env: dict[str, str], producer: Any, job_id: str, result: Any
) -> None:
    """A framework's worker command, started as a process, runs the job to `result` and
    stops cleanly on SIGTERM (exit 0, no traceback); `producer` is closed afterwards."""
    from helpers import wait_until

    worker = subprocess.Popen(command, cwd=cwd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: producer.jobs.require(job_id).is_finished, timeout=30)
        assert producer.jobs.require(job_id).result == result
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
        producer.close()
    assert worker.returncode == 0, stderr
    assert "Traceback" not in stderr
