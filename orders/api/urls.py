from rest_framework.routers import SimpleRouter

from orders.api.views import FulfillmentViewSet, OrderViewSet

router = SimpleRouter()
router.register("orders", OrderViewSet, basename="order")
router.register(
    r"orders/(?P<order_pk>[^/.]+)/fulfillments",
    FulfillmentViewSet,
    basename="order-fulfillment",
)

urlpatterns = router.urls
