"""The queue settings' rules (model/queues.py) and their one validator (model/validation.py)."""

from __future__ import annotations

import pytest

import conveyor
from conveyor.errors import ConfigurationError, InvalidQueueSettings
from conveyor.model.queues import QueueChange, QueueSettings, StoredQueue, full_message, merge
from conveyor.model.validation import (
    MAX_QUEUE_CONCURRENCY,
    MAX_QUEUE_SIZE,
    check_queue_changes,
    check_queue_settings,
)


def test_code_fills_a_new_queue_and_an_operator_marks_what_it_sets() -> None:
    declared = merge(None, "q", QueueChange.from_code(QueueSettings(2, 10, "refuse")))
    assert declared == StoredQueue("q", QueueSettings(2, 10, "refuse"))
    changed = merge(declared, "q", QueueChange.by_operator(max_size=None))
    assert changed == StoredQueue("q", QueueSettings(2, None, "refuse"), frozenset({"max_size"}))
    redeclared = merge(changed, "q", QueueChange.from_code(QueueSettings(5, 7)))
    assert redeclared.settings == QueueSettings(5, None, "wait")  # max_size stays the operator's
    reset = merge(redeclared, "q", QueueChange.reset(QueueSettings(1)))
    assert reset == StoredQueue("q", QueueSettings(1))


def test_an_unknown_setting_is_refused() -> None:
    with pytest.raises(InvalidQueueSettings, match="unknown queue setting"):
        QueueChange.by_operator(priority=1)
    with pytest.raises(InvalidQueueSettings, match="unknown queue setting 'rate'"):
        check_queue_changes({"rate": 1})


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"concurrency": 0}, "concurrency must be from 1"),
        ({"concurrency": MAX_QUEUE_CONCURRENCY + 1}, "concurrency must be from 1"),
        ({"concurrency": True}, "must be an integer"),
        ({"concurrency": 2.0}, "must be an integer"),
        ({"max_size": -5}, "max_size must be from 1"),
        ({"max_size": MAX_QUEUE_SIZE + 1}, "max_size must be from 1"),
        ({"max_size": "10"}, "must be an integer"),
        ({"when_full": "drop"}, "'wait' or 'refuse'"),
        ({"when_full": None}, "'wait' or 'refuse'"),
    ],
)
def test_out_of_range_settings_are_refused(settings: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidQueueSettings, match=words):
        check_queue_settings(**settings)


def test_app_queue_checks_with_the_same_validator() -> None:
    app = conveyor.App("memory://")
    with pytest.raises(ConfigurationError, match="concurrency must be from 1"):
        app.queue("q", concurrency=0)
    with pytest.raises(InvalidQueueSettings, match="'wait' or 'refuse'"):
        app.queue("q", max_size=5, when_full="later")  # type: ignore[arg-type]
    app.queue("q", concurrency=None, max_size=MAX_QUEUE_SIZE)
    assert app.queue_settings == {"q": QueueSettings(None, MAX_QUEUE_SIZE)}


def test_the_full_message_names_the_queue_its_bound_and_what_to_do() -> None:
    refused = full_message("imports", 10, 10, 1, waited=None)
    assert "queue 'imports' is full (10 of max_size=10 jobs are waiting, 1 more asked)" in refused
    assert "conveyor queues set imports --max-size N" in refused
    assert "after waiting 2.5s" in full_message("imports", 10, 9, 2, waited=2.5)
    assert "can never fit" in full_message("imports", 10, 0, 11, waited=None)
