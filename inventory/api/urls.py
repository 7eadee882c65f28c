from django.urls import path
from rest_framework.routers import SimpleRouter

from inventory.api.views import MovementViewSet, StockBatchView

router = SimpleRouter()
router.register("inventory/movements", MovementViewSet, basename="movement")

urlpatterns = [
    path("stock/", StockBatchView.as_view(), name="stock-batch"),
    *router.urls,
]
