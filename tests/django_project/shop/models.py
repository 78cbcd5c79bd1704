"""The shop's one model: an order, written in the same transaction as its job."""

from django.db import models


class Order(models.Model):
    """An order whose receipt is sent by a job."""

    total = models.IntegerField()
