"""On SQLite: an enqueue inside transaction.atomic() waits for on_commit (run by Django's
test runner, with project.settings_sqlite)."""

from contextlib import suppress

from django.db import transaction
from django.test import TransactionTestCase

from conveyor.integrations.django import get_app
from shop.jobs import connection_at_start, send_receipt
from shop.models import Order


class Rollback(Exception):
    """Raised to roll a block back."""


class EnqueueOnCommit(TransactionTestCase):
    """The job is stored when the transaction commits, never when it rolls back."""

    def setUp(self) -> None:
        self.app = get_app()

    def test_the_job_is_stored_at_the_commit_with_the_id_it_was_given(self) -> None:
        with transaction.atomic():
            order = Order.objects.create(total=10)
            handle = send_receipt.enqueue(order_id=order.id)
            self.assertIsNone(self.app.jobs.get(handle.id))
        self.assertEqual(self.app.jobs.require(handle.id).args, {"order_id": order.id})

    def test_a_rollback_means_no_job(self) -> None:
        with suppress(Rollback), transaction.atomic():
            handle = send_receipt.enqueue(order_id=1)
            raise Rollback
        self.assertIsNone(self.app.jobs.get(handle.id))

    def test_a_bad_job_is_refused_at_the_enqueue_not_at_the_commit(self) -> None:
        from conveyor import InvalidJobOptions

        with transaction.atomic(), self.assertRaises(InvalidJobOptions):
            send_receipt.with_options(priority=10**9).enqueue(order_id=1)

    def test_outside_a_transaction_the_job_is_stored_at_once(self) -> None:
        handle = send_receipt.enqueue(order_id=2)
        self.assertIsNotNone(self.app.jobs.get(handle.id))

    def test_a_view_in_atomic_enqueues_and_the_job_runs(self) -> None:
        answer = self.client.post("/orders/", {"total": "5"})
        job_id = answer.json()["job"]
        self.app.testing.drain()
        self.assertEqual(self.client.get(f"/jobs/{job_id}/").json()["state"], "completed")

    def test_each_plain_job_starts_without_the_previous_jobs_connection(self) -> None:
        # as Django closes stale connections around each request, the worker does around
        # each job on its thread (CONN_MAX_AGE is 0 here: every connection is stale after)
        handles = [connection_at_start.enqueue() for _ in range(6)]
        self.app.testing.drain()
        results = [self.app.jobs.require(handle.id).result for handle in handles]
        threads = [thread for thread, _ in results]
        self.assertLess(len(set(threads)), len(threads))  # some thread ran several of them
        self.assertEqual([was_open for _, was_open in results], [False] * 6)
