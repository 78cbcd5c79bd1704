"""Views that write an order and enqueue its receipt in one transaction."""

from django.db import transaction
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from conveyor.integrations.django import app
from shop.jobs import send_receipt
from shop.models import Order


@csrf_exempt
@transaction.atomic
def place_order(request: HttpRequest) -> JsonResponse:
    """Store an order and its receipt job together."""
    order = Order.objects.create(total=int(request.POST.get("total", "1")))
    handle = send_receipt.enqueue(order_id=order.id)
    return JsonResponse({"order": order.id, "job": handle.id}, status=201)


class PaymentDeclined(Exception):
    """Raised after the enqueue: the transaction, job included, rolls back."""


@csrf_exempt
@transaction.atomic
def place_order_then_fail(request: HttpRequest) -> JsonResponse:
    """Store an order and its job, then fail: neither is kept."""
    order = Order.objects.create(total=1)
    send_receipt.enqueue(order_id=order.id)
    raise PaymentDeclined(f"order {order.id}")


def job_status(request: HttpRequest, job_id: str) -> JsonResponse:
    """A job's state and result."""
    job = app.jobs.get(job_id)
    if job is None:
        raise Http404(job_id)
    return JsonResponse({"state": job.state.value, "result": job.result})
