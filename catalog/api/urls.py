from rest_framework.routers import SimpleRouter

from catalog.api.views import CategoryViewSet, ProductViewSet, VariantViewSet

router = SimpleRouter()
router.register("products", ProductViewSet, basename="product")
router.register("variants", VariantViewSet, basename="variant")
router.register("categories", CategoryViewSet, basename="category")

urlpatterns = router.urls
