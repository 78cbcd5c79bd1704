"""Bulk actions on jobs, shared by the API and the pages: retry, cancel, delete or run now,
on a selection of ids or on every job a list's filter matches (bounded)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from conveyor.backends.records import LIST_COUNT_CAP
from conveyor.errors import ConveyorError
from conveyor.model.job import ACTIVE_STATES, Job, JobState
from conveyor.model.lifecycle import RETRYABLE_STATES
from conveyor.services import JobService, parse_states
from conveyor.web.errors import Refused
from conveyor.web.schemas import JOB_ID_PATTERN, MAX_SELECTED

BULK_LIMIT = LIST_COUNT_CAP  # jobs one call acts on by filter: as many as a listing counts
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class BulkAction:
    """One thing a bulk call does to each job it applies to."""

    name: str  # as in the path: /jobs/bulk/{name}
    states: frozenset[JobState]  # the states it applies to; others are passed over
    done: str  # past tense, for the notice
    applies_to: str  # those states in words
    passed_over: str  # why a job it does not apply to is: "was …", "were …"
    destructive: bool  # asks for confirmation first

    def apply(self, jobs: JobService) -> Callable[[str], object]:
        """The service call doing it to one job (it raises when the job moved on)."""
        return {
            "retry": jobs.retry,
            "cancel": jobs.cancel,
            "delete": jobs.delete,
            "run-now": jobs.run_now,
        }[self.name]


ACTIONS: dict[str, BulkAction] = {
    action.name: action
    for action in (
        BulkAction(
            "retry",
            RETRYABLE_STATES,
            "retried",
            "failed or cancelled",
            "not failed or cancelled",
            False,
        ),
        BulkAction(
            "cancel",
            ACTIVE_STATES,
            "cancelled",
            "waiting, scheduled, pending or running",
            "already finished",
            True,
        ),
        BulkAction(
            "delete",
            frozenset(JobState) - {JobState.RUNNING},
            "deleted",
            "not running",
            "running (cancel it first)",
            True,
        ),
        BulkAction(
            "run-now",
            frozenset({JobState.SCHEDULED}),
            "made due now",
            "scheduled",
            "not scheduled",
            False,
        ),
    )
}


def action_named(name: str) -> BulkAction:
    """The bulk action called `name`; any other name is a 404 naming the ones there are."""
    action = ACTIONS.get(name)
    if action is None:
        known = ", ".join(ACTIONS)
        raise Refused(404, f"there is no bulk action {name[:40]!r}: the actions are {known}")
    return action


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What a bulk call did: of `matched` jobs (the ids named, or the filter's eligible jobs),
    the ids of those it changed; `truncated` when more matched than one call handles."""

    action: BulkAction
    matched: int
    changed: list[str]
    truncated: bool
    selected: bool  # on named ids, not on a filter
    asked_to_stop: int = 0  # of the changed, running jobs a cancel asked to stop

    def notice(self) -> str:
        """The sentence a page shows after it."""
        which = "selected " if self.selected else ""
        if not self.selected and not self.matched:
            return (
                f"No job matching the filter is {self.action.applies_to}: none {self.action.done}."
            )
        text = f"{len(self.changed)} of {_jobs(self.matched, which)} {self.action.done}"
        skipped = self.matched - len(self.changed)
        if self.asked_to_stop:
            text += f" ({self.asked_to_stop:,} running: asked to stop)"
        if self.selected and skipped:
            were = "was" if skipped == 1 else "were"
            text += f"; {skipped:,} {were} {self.action.passed_over}"
        if self.truncated:
            text += f" (the limit of {BULK_LIMIT:,} a call was reached: run it again for the rest)"
        return text + "."


def _jobs(count: int, which: str) -> str:
    return f"{count:,} {which}jobs"  # "1 of 1 jobs": the sentence counts the second number


def states_or_422(state: str | None) -> frozenset[JobState] | None:
    """Parse a state filter; an unknown state is a 422, not a conflict."""
    if state is None or not state.strip():
        return None
    try:
        return parse_states(state)
    except ConveyorError as exc:
        raise Refused(422, str(exc)) from None


#: The listing's filters beyond state, name, queue and search, by their `app.jobs.list`
#: keyword (the same name in the API's query, the dashboard's URL and a bulk request).
MORE_FILTERS = (
    "name_contains",
    "created_after",
    "created_before",
    "finished_after",
    "finished_before",
    "worker",
    "error_kind",
)


def on_ids(jobs: JobService, action: BulkAction, ids: Sequence[str]) -> BulkResult:
    """Do `action` to each named job it applies to; the others are counted, not changed.

    Refused, with nothing done: no id (422), more than MAX_SELECTED (422), a malformed id
    (422), an id no job has (404: deleted or pruned since the list was shown).
    """
    wanted = list(dict.fromkeys(ids))  # each once, in order
    if not wanted:
        raise Refused(422, "no job is selected: tick the jobs to act on, or select all matching")
    if len(wanted) > MAX_SELECTED:
        raise Refused(
            422,
            f"{len(wanted):,} jobs are selected but one call takes at most {MAX_SELECTED}: "
            "act on the list's filter instead (select all matching)",
        )
    for job_id in wanted:
        if not re.match(JOB_ID_PATTERN, job_id):
            raise Refused(422, f"{job_id[:60]!r} is not a job id")
    found: list[Job] = []
    missing: list[str] = []
    for job_id in wanted:
        job = jobs.get(job_id)
        if job is None:
            missing.append(job_id)
        else:
            found.append(job)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise Refused(
            404,
            f"no job has id {missing[0]}{more} (deleted or pruned since the list was shown): "
            "nothing was done; reload the list and select again",
        )
    eligible = [job.id for job in found if job.state in action.states]
    changed, asked = _act(jobs, action, eligible)
    return BulkResult(action, len(wanted), changed, False, True, asked)


def on_filter(
    jobs: JobService,
    action: BulkAction,
    *,
    state: str | None,
    name: str | None,
    queue: str | None,
    search: str | None,
    more: Mapping[str, str | None] | None = None,
) -> BulkResult:
    """Do `action` to the jobs the filter matches that it applies to, newest first, at most
    BULK_LIMIT of them; `more` holds the listing's other filters (MORE_FILTERS), as text."""
    extra = {key: value or None for key, value in (more or {}).items() if key in MORE_FILTERS}
    wanted = states_or_422(state)
    states = action.states if wanted is None else action.states & wanted
    if not states:
        return BulkResult(action, 0, [], False, False)
    ids: list[str] = []
    page = 1
    truncated = False
    while True:
        found = jobs.list(
            state=states,
            name=name or None,
            queue=queue or None,
            search=search or None,
            page=page,
            per_page=_PAGE,
            **extra,
        )
        ids.extend(job.id for job in found.jobs)
        if len(ids) >= BULK_LIMIT:
            # the listing counts up to LIST_COUNT_CAP (= BULK_LIMIT): not exact means more
            truncated = len(ids) > BULK_LIMIT or not found.total_exact
            ids = ids[:BULK_LIMIT]
            break
        if len(found.jobs) < _PAGE:
            break
        page += 1
    changed, asked = _act(jobs, action, ids)
    return BulkResult(action, len(ids), changed, truncated, False, asked)


def _act(jobs: JobService, action: BulkAction, ids: list[str]) -> tuple[list[str], int]:
    """The ids `action` changed, and how many of them were running jobs asked to stop."""
    act = action.apply(jobs)
    changed = []
    asked = 0
    for job_id in ids:
        try:
            after = act(job_id)
        except ConveyorError:
            continue  # it moved on (finished, retried, deleted) since it was listed
        changed.append(job_id)
        asked += isinstance(after, Job) and after.state is JobState.RUNNING
    return changed, asked
