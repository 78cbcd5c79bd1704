"""Static checking of typed jobs: mypy, run on tests/typing/typed_jobs_sample.py, reports
exactly the wrong calls marked there (a wrong name, a missing argument, a wrong type, a
misspelt option or setting) and none of the correct ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api", reason='mypy missing: pip install -e ".[dev]"')

SAMPLE = Path(__file__).parent.parent / "typing" / "typed_jobs_sample.py"
MARK = re.compile(r"#\s*error:\s*(.+)$")
REPORTED = re.compile(r"^[^:]+:(\d+): error: (.+?)(?:\s+\[[a-z-]+\])?$")


def test_mypy_reports_the_wrong_calls_and_only_them() -> None:
    expected = {
        number: match.group(1).strip()
        for number, line in enumerate(SAMPLE.read_text().splitlines(), start=1)
        if (match := MARK.search(line))
    }
    assert len(expected) >= 8  # the sample still holds its wrong calls
    out, err, _ = api.run(
        ["--strict", "--no-incremental", "--show-error-codes", "--no-error-summary",
         "--hide-error-context", "--no-pretty", str(SAMPLE)]
    )  # fmt: skip
    reported: dict[int, list[str]] = {}
    for line in out.splitlines():
        if match := REPORTED.match(line):
            reported.setdefault(int(match.group(1)), []).append(match.group(2))
    unexpected = {n: msgs for n, msgs in reported.items() if n not in expected}
    assert not unexpected, (unexpected, err)
    for number, text in expected.items():
        messages = reported.get(number, [])
        assert any(text in message for message in messages), (number, text, messages)
