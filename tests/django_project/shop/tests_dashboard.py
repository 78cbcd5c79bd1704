"""The dashboard in urls.py behind Django's authentication, and `manage.py conveyor`
(with either settings)."""

import io
import re
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client, TransactionTestCase, override_settings

from conveyor import ConfigurationError
from conveyor.integrations.django import core, get_app
from shop.jobs import send_receipt

API = "/admin/jobs/api/jobs"


def csrf_of(page: Any) -> str:
    match = re.search(r'data-csrf="([^"]+)"', page.content.decode())
    assert match is not None, "the dashboard page carries no CSRF token"
    return match.group(1)


class Dashboard(TransactionTestCase):
    """Staff manage, signed-in users view, everyone else is refused."""

    def setUp(self) -> None:
        self.job = send_receipt.enqueue(order_id=1)

    def test_anonymous_requests_are_refused(self) -> None:
        self.assertEqual(self.client.get(API).status_code, 401)
        self.assertEqual(self.client.get("/admin/jobs/").status_code, 401)

    def test_a_signed_in_user_may_view_and_not_change(self) -> None:
        self.client.force_login(User.objects.create_user("grace"))
        listed = self.client.get(API)
        self.assertEqual(listed.status_code, 200)
        self.assertIn(self.job.id, [job["id"] for job in listed.json()["jobs"]])
        page = self.client.get(f"/admin/jobs/jobs/{self.job.id}")
        self.assertEqual(page.status_code, 200)
        cancel = self.client.post(f"{API}/{self.job.id}/cancel", HTTP_X_CSRF_TOKEN=csrf_of(page))
        self.assertEqual(cancel.status_code, 403)

    def test_an_inactive_user_is_refused(self) -> None:
        self.client.force_login(User.objects.create_user("mallory", is_active=False))
        self.assertEqual(self.client.get(API).status_code, 401)

    def test_staff_may_manage_with_the_pages_csrf_token(self) -> None:
        client = Client(enforce_csrf_checks=True)  # Django's CSRF middleware as in production
        client.force_login(User.objects.create_user("ada", is_staff=True))
        page = client.get("/admin/jobs/")
        self.assertEqual(page.status_code, 200)
        self.assertIn('href="/admin/jobs/jobs', page.content.decode())
        self.assertEqual(client.post(f"{API}/{self.job.id}/cancel").status_code, 403)
        cancel = client.post(f"{API}/{self.job.id}/cancel", HTTP_X_CSRF_TOKEN=csrf_of(page))
        self.assertEqual(cancel.status_code, 200)
        self.assertEqual(get_app().jobs.require(self.job.id).state.value, "cancelled")
        self.assertEqual(client.get("/admin/jobs/static/app.css").status_code, 200)


class ManageCommand(TransactionTestCase):
    """`manage.py conveyor VERB` is the conveyor command on the project's App."""

    def test_migrate_and_list(self) -> None:
        job = send_receipt.enqueue(order_id=2)
        out = io.StringIO()
        with redirect_stdout(out):
            call_command("conveyor", "migrate")
            call_command("conveyor", "jobs", "ls", "--json")
        self.assertIn("schema version", out.getvalue())
        self.assertIn(job.id, out.getvalue())

    def test_a_failing_verb_is_a_command_error(self) -> None:
        with (
            self.assertRaises(CommandError),
            redirect_stdout(io.StringIO()),
            redirect_stderr(io.StringIO()),
        ):
            call_command("conveyor", "jobs", "show", "0190aaaa0000700080000000000000ff")


class Settings(TransactionTestCase):
    """A wrong CONVEYOR setting is refused, naming the key."""

    def tearDown(self) -> None:
        core._reset_for_tests()

    def check_refused(self, config: object, words: str) -> None:
        core._reset_for_tests()
        with override_settings(CONVEYOR=config), self.assertRaisesRegex(ConfigurationError, words):
            get_app()

    def test_bad_settings(self) -> None:
        self.check_refused("sqlite:///x.db", "must be a dict")
        self.check_refused({"urls": "x"}, "unknown key")
        self.check_refused({"url": 5}, "store URL string")
        self.check_refused({"database": "other"}, "not in settings.DATABASES")
        self.check_refused({"atomic": "yes"}, "True or False")
        self.check_refused({"settings": {"speed": 1}}, "unknown setting")
        self.check_refused({"queues": {"receipts": "2"}}, "concurrency limit")
