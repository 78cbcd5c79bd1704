"""Random option values and text at `conveyor jobs enqueue`: each call is a stored job that
reads back as given, or one line on stderr with exit 2 (1 for an unknown job) — never a
traceback."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from property_inputs import anything, arguments, texts

from .support import Project

FLAGS = {"--queue": texts, "--priority": anything, "--max-attempts": anything,
         "--unique-key": texts, "--delay": anything}  # fmt: skip


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    args=arguments,
    flags=st.dictionaries(st.sampled_from(sorted(FLAGS)), anything | texts, max_size=3),
)
def test_enqueue_stores_what_it_was_given_or_refuses_in_one_line(
    project: Project, args: Any, flags: dict[str, Any]
) -> None:
    argv = ["jobs", "enqueue", "greet", "--args", json.dumps(args, allow_nan=True), "--json"]
    for flag, value in flags.items():
        text = str(value)
        if "\x00" in text:  # no process can receive a NUL in its argv: the OS refuses first
            continue
        argv += [flag, text]
    result = project.invoke(*argv)
    if result.exit_code == 0:
        job = project.app.jobs.get(json.loads(result.stdout)["id"])
        assert job is not None and job.args == ({} if args is None else args)
        return
    assert result.exit_code == 2, result.output + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
