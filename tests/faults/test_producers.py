"""20 producers enqueueing at once (4 processes of 5 threads, each thread with an App and
connections of its own), on SQLite and PostgreSQL, half of them one by one and half with
enqueue_many: one job per unique key (every producer was answered with that one job, and
exactly one was told it created it), and every job without a key stored once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

import conveyor
from faults.support import APP_DIR

pytestmark = pytest.mark.slow
PRODUCERS = 20
PROCESSES = 4  # of PRODUCERS / PROCESSES threads each
KEYS = 25  # shared by every producer, each enqueueing every key twice
PLAIN = 50  # jobs without a key, per producer


def all_jobs(app: conveyor.App) -> list[conveyor.Job]:
    """Every job in the store, through the public listing."""
    jobs: list[conveyor.Job] = []
    page = 1
    while batch := app.jobs.list(page=page, per_page=1000).jobs:
        jobs += batch
        page += 1
    return jobs


def test_concurrent_producers_store_each_job_once_and_each_unique_key_once(
    app: conveyor.App, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [
                *(sys.executable, str(APP_DIR / "produce.py"), app.url, str(go)),
                *(str(first), str(PRODUCERS // PROCESSES), str(KEYS), str(PLAIN)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for first in range(0, PRODUCERS, PRODUCERS // PROCESSES)
    ]
    try:
        for proc in procs:  # each has opened the store
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line == "ready\n", (line, proc.stderr.read() if proc.stderr else "")
        go.touch()
        outputs = [proc.communicate(timeout=90) for proc in procs]
    finally:
        for proc in procs:
            if proc.returncode is None:  # not reaped: the test failed before the end
                proc.kill()
                proc.communicate(timeout=10)
    failures = [(proc.returncode, err) for proc, (_, err) in zip(procs, outputs, strict=True)]
    assert all(code == 0 for code, _ in failures), failures
    answers = [answer for out, _ in outputs for answer in json.loads(out)]
    assert len(answers) == PRODUCERS * (2 * KEYS + PLAIN)

    by_key: dict[str, set[str]] = defaultdict(set)
    created_per_key: Counter[str] = Counter()
    plain_ids: list[str] = []
    for job_id, key, created in answers:
        if key is None:
            assert created
            plain_ids.append(job_id)
        else:
            by_key[key].add(job_id)
            created_per_key[key] += created
    assert len(set(plain_ids)) == len(plain_ids) == PRODUCERS * PLAIN
    assert all(len(ids) == 1 for ids in by_key.values()), by_key  # one job per key for all
    assert created_per_key == {f"key-{k}": 1 for k in range(KEYS)}  # one creator per key

    stored = all_jobs(app)
    stored_ids = Counter(job.id for job in stored)
    assert all(count == 1 for count in stored_ids.values())
    stored_keys = Counter(job.unique_key for job in stored if job.unique_key is not None)
    assert stored_keys == {f"key-{k}": 1 for k in range(KEYS)}  # 0 duplicates for unique keys
    keyed_ids = {job_id for ids in by_key.values() for job_id in ids}
    assert set(stored_ids) == set(plain_ids) | keyed_ids  # every job stored, once
    assert len(stored) == PRODUCERS * PLAIN + KEYS
