"""The shop's jobs, found by conveyor.integrations.django when Django starts."""

import conveyor
from conveyor.integrations.django import app


@app.job(queue="receipts")
def send_receipt(ctx: conveyor.Context, order_id: int) -> str:
    """Pretend to mail the receipt of an order."""
    ctx.log(f"receipt for order {order_id}")
    return f"receipt-{order_id}"
