"""Claimed rows to jobs, where one malformed row cannot harm the others.

A row written around the validator (by hand, by a producer in another language, by an old
bug) may not decode, or decode into a job no worker can run (args that are not a dict, a
priority that is text). A store that let that raise after its claim committed would leave every
job of the batch claimed by a worker that never learns of them: they would all come back as
`lost`. So the SQL stores decode claimed rows one by one here; the ones that fail are failed at
once, alone, with error kind `malformed`, and the rest of the batch runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from conveyor.backends.records import Claimed, ClaimRequest, Outcome
from conveyor.model.job import AttemptError, Job, JobState
from conveyor.model.validation import stored_job_problem

log = logging.getLogger(__name__)

Row = TypeVar("Row")


def claim_runnable(
    claim_once: Callable[[], tuple[Claimed, list[Outcome]]],
    finish: Callable[[Sequence[Outcome]], object],
) -> Claimed:
    """Claim until the claim holds a runnable job or none is left: each pass's malformed rows
    are failed at once (`finish`), and a pass that took only malformed rows claims again (each
    fails at least one row, so this ends)."""
    while True:
        claimed, rejected = claim_once()
        if not rejected:
            return claimed
        finish(rejected)
        if claimed.jobs:
            return claimed


def decode_claimed(
    rows: Iterable[Row], decode: Callable[[Row], Job], request: ClaimRequest
) -> tuple[list[Job], list[Outcome]]:
    """The claimed jobs in claim order (priority, run_at, id), and a `failed` outcome (kind
    `malformed`) for each row that could not become a runnable job."""
    jobs: list[Job] = []
    rejected: list[Outcome] = []
    for row in rows:
        try:
            job = decode(row)
            problem = stored_job_problem(job)
        except Exception as exc:  # any decoding failure: the row is what is wrong
            problem = f"{type(exc).__name__}: {exc}"
        if problem is None:
            jobs.append(job)
            continue
        rejected.append(_malformed(row, problem, request))
    jobs.sort(key=lambda j: (-j.priority, j.run_at, j.id))
    return jobs, rejected


def _malformed(row: Any, problem: str, request: ClaimRequest) -> Outcome:
    job_id, attempt = row["id"], row["attempt"]
    log.error(
        "job %s is malformed in the store and was failed without running: %s", job_id, problem
    )
    message = (
        f"the stored job cannot be run: {problem}; it was failed without running. "
        "Enqueue it again through Conveyor (which checks every option), or fix the row"
    )
    error = AttemptError(attempt, message, at=request.now, kind="malformed")
    return Outcome(job_id, request.worker_id, attempt, JobState.FAILED, request.now, error=error)
