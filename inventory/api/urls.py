from django.urls import path
from rest_framework.routers import SimpleRouter

from inventory.api.views import (
    LocationViewSet,
    MovementViewSet,
    ProductStockViewSet,
    StockBatchView,
    TransferViewSet,
)

router = SimpleRouter()
router.register("inventory/movements", MovementViewSet, basename="movement")
router.register("inventory/locations", LocationViewSet, basename="location")
router.register("inventory/transfers", TransferViewSet, basename="transfer")
# products/{id}/stock/ (URL name product-stock): the catalog's product URLs, inventory's view.
router.register("products", ProductStockViewSet, basename="product")

urlpatterns = [
    path("stock/", StockBatchView.as_view(), name="stock-batch"),
    *router.urls,
]
