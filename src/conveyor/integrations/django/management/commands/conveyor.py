"""`python manage.py conveyor VERB ...`: the `conveyor` command on the project's App."""

from __future__ import annotations

import argparse
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conveyor.integrations.django.core import get_app


class Command(BaseCommand):
    """Forwards everything after `conveyor` to the conveyor command (worker, migrate, jobs,
    queues, recurring, workers, stats, web), on the App of `settings.CONVEYOR`."""

    help = (
        "Conveyor's command on this project's jobs: worker, migrate, jobs, queues, recurring, "
        "workers, stats (python manage.py conveyor --help lists them)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Everything is the conveyor command's (for call_command)."""
        parser.add_argument("args", nargs=argparse.REMAINDER, help="a conveyor verb and options")

    def run_from_argv(self, argv: list[str]) -> None:
        """From manage.py: the arguments go to the conveyor command as they are, --help too;
        it exits with its own code."""
        from conveyor.cli.commands import run_with_app

        run_with_app(get_app(), argv[2:], prog_name=f"{os.path.basename(argv[0])} conveyor")

    def handle(self, *args: str, **options: Any) -> None:
        """From call_command("conveyor", "migrate", ...): a failure is a CommandError."""
        from conveyor.cli.commands import run_with_app

        try:
            run_with_app(get_app(), args, prog_name="manage.py conveyor")
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise CommandError(f"conveyor {' '.join(args)} exited with {exc.code}") from None
