"""The shop's jobs, found by conveyor.integrations.django when Django starts."""

import conveyor
from conveyor.integrations.django import app


@app.job(queue="receipts")
def send_receipt(ctx: conveyor.Context, order_id: int) -> str:
    """Pretend to mail the receipt of an order."""
    ctx.log(f"receipt for order {order_id}")
    return f"receipt-{order_id}"


@app.job
def connection_at_start(ctx: conveyor.Context) -> list[int | bool]:
    """Whether this thread's Django connection was open when the job began, then open it."""
    import threading

    from django.db import connection

    was_open = connection.connection is not None
    connection.ensure_connection()
    return [threading.get_ident(), was_open]
