"""Django: an installable app. Add `"conveyor.integrations.django"` to INSTALLED_APPS, configure
it in `CONVEYOR = {...}`, and register jobs in each installed app's `jobs.py`:

```python
# shop/jobs.py
import conveyor
from conveyor.integrations.django import app


@app.job
def send_receipt(ctx: conveyor.Context, order_id: int) -> None: ...
```

`python manage.py conveyor worker` (and every other verb of the `conveyor` command) runs on
that App; an enqueue inside `transaction.atomic()` commits or rolls back with it; the
dashboard mounts in `urls.py` behind Django's authentication (`dashboard_urls()`).

Installed with the `django` extra; the dashboard also needs the `web` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.integrations.django.core import DjangoApp

    app: DjangoApp


def get_app() -> DjangoApp:
    """The project's App, made from `settings.CONVEYOR` at first use (once per process)."""
    from conveyor.integrations.django.core import get_app as made

    return made()


def __getattr__(name: str) -> Any:
    """`from conveyor.integrations.django import app`: the project's App (see `get_app`)."""
    if name == "app":
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "get_app"]
