"""Conveyor inside web frameworks, each behind its own extra.

- `conveyor.integrations.fastapi` (extra `fastapi`): a lifespan that opens the App and may run
  an embedded worker, a dependency giving handlers the App, the dashboard under a prefix with
  the host's authentication.
- `conveyor.integrations.flask` (extra `flask`): the `Conveyor(app)` extension, `flask conveyor
  ...`, the dashboard behind the Flask app's login.
- `conveyor.integrations.django` (extra `django`): an installable Django app: settings in
  `CONVEYOR`, jobs found in each installed app's `jobs.py`, `manage.py conveyor ...`, enqueue
  inside `transaction.atomic()`, the dashboard behind Django's authentication.

Nothing here is imported by the core: each module imports its framework, and only its own.
"""
