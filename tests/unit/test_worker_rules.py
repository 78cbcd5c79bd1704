"""The rules of an operator's requests of a worker (model/workers.py), which every store applies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor.errors import UsageError, WorkerNotFound, WorkerStateConflict
from conveyor.model.workers import (
    WORKER_MODES,
    check_worker_action,
    mode_asked,
    pending_mode,
    request_after,
    worker_missing,
)


@pytest.mark.parametrize(
    ("mode", "requested", "action", "kept"),
    [
        ("running", None, "quiet", "quiet"),
        ("running", None, "stop", "stop"),
        ("running", None, "resume", None),
        ("quiet", "quiet", "resume", None),
        ("quiet", "quiet", "quiet", "quiet"),
        ("quiet", "quiet", "stop", "stop"),
        ("running", "stop", "stop", "stop"),
        ("stopping", None, "stop", "stop"),
    ],
)
def test_what_the_store_keeps(mode: str, requested: str | None, action: str, kept: str) -> None:
    assert request_after("w", mode, requested, action) == kept  # type: ignore[arg-type]


@pytest.mark.parametrize(("mode", "requested"), [("running", "stop"), ("stopping", None)])
@pytest.mark.parametrize("action", ["quiet", "resume"])
def test_stopping_cannot_be_undone(mode: str, requested: str | None, action: str) -> None:
    with pytest.raises(WorkerStateConflict, match="w is stopping"):
        request_after("w", mode, requested, action)  # type: ignore[arg-type]


def test_an_unknown_action_says_which_there_are() -> None:
    with pytest.raises(UsageError, match="ask quiet, stop or resume"):
        check_worker_action("pause")
    assert check_worker_action("stop") == "stop"


@pytest.mark.parametrize(
    ("mode", "requested", "pending"),
    [
        ("running", None, None),
        ("running", "quiet", "quiet"),
        ("quiet", "quiet", None),
        ("quiet", None, "running"),
        ("running", "stop", "stopping"),
        ("quiet", "stop", "stopping"),
        ("stopping", "stop", None),
        ("stopping", None, None),  # stopping on a signal: not asked to go anywhere
    ],
)
def test_the_mode_asked_and_not_yet_followed(
    mode: str, requested: str | None, pending: str | None
) -> None:
    assert pending_mode(mode, requested) == pending
    assert mode_asked(requested) in WORKER_MODES


def test_the_not_found_messages_say_what_to_do() -> None:
    assert "conveyor workers ls" in str(worker_missing("w"))
    gone = worker_missing("w", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert isinstance(gone, WorkerNotFound)
    assert "w is gone: its last heartbeat was at 2026-01-02 03:04:05 UTC" in str(gone)
