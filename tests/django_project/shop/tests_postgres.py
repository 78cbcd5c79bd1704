"""On PostgreSQL: an enqueue inside transaction.atomic() is written on Django's connection,
in its transaction (run by Django's test runner, with project.settings)."""

from contextlib import suppress

from django.db import connection, transaction
from django.test import TransactionTestCase

from conveyor.integrations.django import get_app
from shop.jobs import send_receipt
from shop.models import Order
from shop.views import PaymentDeclined


class Rollback(Exception):
    """Raised to roll a block back."""


def rows_on_djangos_connection(job_id: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM conveyor.jobs WHERE id = %s", [job_id])
        (count,) = cursor.fetchone()
    return int(count)


class EnqueueInDjangosTransaction(TransactionTestCase):
    """The job lives and dies with the transaction it was enqueued in."""

    def setUp(self) -> None:
        self.app = get_app()

    def test_the_store_is_djangos_own_database(self) -> None:
        self.assertTrue(self.app.url.endswith("/" + connection.settings_dict["NAME"]))
        self.assertTrue(connection.settings_dict["NAME"].startswith("test_"))

    def test_a_job_enqueued_in_atomic_exists_only_once_committed(self) -> None:
        with transaction.atomic():
            order = Order.objects.create(total=10)
            handle = send_receipt.enqueue(order_id=order.id)
            self.assertEqual(rows_on_djangos_connection(handle.id), 1)  # in this transaction
            self.assertIsNone(self.app.jobs.get(handle.id))  # the store's own connections
        self.assertEqual(self.app.jobs.require(handle.id).args, {"order_id": order.id})

    def test_a_rollback_takes_the_job_with_the_order(self) -> None:
        with suppress(Rollback), transaction.atomic():
            order = Order.objects.create(total=10)
            handle = send_receipt.enqueue(order_id=order.id)
            raise Rollback
        self.assertFalse(Order.objects.exists())
        self.assertIsNone(self.app.jobs.get(handle.id))
        self.assertEqual(rows_on_djangos_connection(handle.id), 0)

    def test_a_savepoint_rolled_back_takes_only_its_job(self) -> None:
        with transaction.atomic():
            kept = send_receipt.enqueue(order_id=1)
            with suppress(Rollback), transaction.atomic():
                dropped = send_receipt.enqueue(order_id=2)
                raise Rollback
        self.assertIsNotNone(self.app.jobs.get(kept.id))
        self.assertIsNone(self.app.jobs.get(dropped.id))

    def test_outside_a_transaction_the_job_is_stored_at_once(self) -> None:
        handle = send_receipt.enqueue(order_id=3)
        self.assertIsNotNone(self.app.jobs.get(handle.id))

    def test_a_view_in_atomic_stores_the_order_and_the_job_then_the_job_runs(self) -> None:
        answer = self.client.post("/orders/", {"total": "25"})
        self.assertEqual(answer.status_code, 201)
        job_id = answer.json()["job"]
        self.assertEqual(self.client.get(f"/jobs/{job_id}/").json()["state"], "pending")
        self.app.testing.drain()
        self.assertEqual(
            self.client.get(f"/jobs/{job_id}/").json(),
            {"state": "completed", "result": f"receipt-{answer.json()['order']}"},
        )

    def test_a_view_that_fails_after_the_enqueue_leaves_no_job(self) -> None:
        before = self.app.jobs.counts().by_state
        with self.assertRaises(PaymentDeclined):
            self.client.post("/orders/failing/")
        self.assertFalse(Order.objects.exists())
        self.assertEqual(self.app.jobs.counts().by_state, before)

    def test_by_name_and_in_bulk_too(self) -> None:
        with suppress(Rollback), transaction.atomic():
            one = self.app.enqueue("send_receipt", {"order_id": 4})
            many = self.app.enqueue_many([send_receipt.request(order_id=n) for n in (5, 6)])
            self.assertEqual(sum(rows_on_djangos_connection(h.id) for h in [one, *many]), 3)
            raise Rollback
        self.assertEqual([self.app.jobs.get(h.id) for h in [one, *many]], [None, None, None])
