"""A job's attempts as its page shows them: newest first, each with its error and traceback
and the log lines written during it."""

from __future__ import annotations

from dataclasses import dataclass, field

from conveyor.model.job import AttemptError, Job, JobState, LogLine


@dataclass
class AttemptGroup:
    """One attempt (`number` 0: lines whose attempt is not known, or errors of no attempt,
    like a step cancelled because its parent failed)."""

    number: int
    outcome: str  # running | completed | failed | retried | cancelled | …
    errors: list[AttemptError] = field(default_factory=list)
    lines: list[LogLine] = field(default_factory=list)
    current: bool = False  # the attempt whose lines the page follows live


def attempt_groups(job: Job) -> list[AttemptGroup]:
    """`job`'s attempts, newest first; an attempt with neither lines nor an error is shown
    only when it is the current one."""
    groups: dict[int, AttemptGroup] = {}

    def group(number: int) -> AttemptGroup:
        if number not in groups:
            groups[number] = AttemptGroup(number, _outcome(job, number))
        return groups[number]

    if job.attempt:
        group(job.attempt).current = True
    for line in job.logs:
        group(line.attempt if line.attempt <= job.attempt else 0).lines.append(line)
    for error in job.errors:
        group(error.attempt if error.attempt <= job.attempt else 0).errors.append(error)
    return [groups[n] for n in sorted(groups, reverse=True)]


def _outcome(job: Job, number: int) -> str:
    if number == 0:
        return "other"
    if number < job.attempt:
        return "retried"  # another attempt followed it
    if job.state in (JobState.SCHEDULED, JobState.PENDING, JobState.WAITING):
        return "retried" if job.errors and job.errors[-1].attempt == number else job.state.value
    return job.state.value
