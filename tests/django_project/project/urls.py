"""The test project's URLs: the shop's views and the dashboard at /admin/jobs/."""

from django.urls import include, path
from shop import views

from conveyor.integrations.django.dashboard import dashboard_urls

urlpatterns = [
    path("orders/", views.place_order),
    path("orders/failing/", views.place_order_then_fail),
    path("jobs/<str:job_id>/", views.job_status),
    path("admin/jobs/", include(dashboard_urls())),
]
