import re
from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

SKU_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
    "Use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
)
CURRENCY_VALIDATOR = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 code.")
# A price as written by staff and clients: the digits 0-9, at most two decimals, no sign.
# Decimal() alone reads "-0.00" (a zero that shows negative) and "١٢.00" (Arabic-Indic
# digits) as prices too.
PRICE_TEXT = re.compile(r"(?:[0-9]{1,10}(?:\.[0-9]{0,2})?|\.[0-9]{1,2})")
PRICE_TEXT_MESSAGE = 'Write the price with the digits 0-9, without a sign, such as "12.50".'


def price_text_is_valid(text: str) -> bool:
    return PRICE_TEXT.fullmatch(text.strip()) is not None


class Category(models.Model):
    """A node of the category tree. Products keep their category; cycles are refused."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "name", "id"]
        verbose_name_plural = "categories"
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(parent=models.F("id")), name="category_not_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Product(ConcurrentTransitionMixin, models.Model):
    """A sellable item. Only Published products reach the storefront or can be ordered.

    Status moves only through the transitions below (Draft→Published, Published→Draft,
    Published→Archived, Archived→Draft); ``catalog.services.product_transition`` applies
    them with validation, audit entry and event. Saving with a stale status raises
    ``ConcurrentTransition`` (optimistic locking).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        ARCHIVED = "archived", "Archived"

    sku = models.CharField(max_length=64, unique=True, validators=[SKU_VALIDATOR])
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, unique=True)
    description = models.TextField(blank=True, max_length=10_000)
    price = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    currency = models.CharField(max_length=3, validators=[CURRENCY_VALIDATOR])
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, related_name="products"
    )
    attributes = models.JSONField(default=dict, blank=True)
    status = FSMField(default=Status.DRAFT, choices=Status.choices, protected=True)
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gte=0), name="product_price_gte_0"),
        ]
        indexes = [
            models.Index(fields=["status", "name", "id"], name="product_status_name_idx"),
            # The default order for staff, who see every status (without it: a full sort).
            models.Index(fields=["name", "id"], name="product_name_idx"),
            models.Index(fields=["status", "category"], name="product_status_category_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    @transition(
        field=status,
        source=Status.DRAFT,
        target=Status.PUBLISHED,
        custom={
            "admin": True,
            "label": "Publish",
            "help_text": "Put it on sale: needs a name, a price above zero and an active category.",
        },
    )
    def publish(self) -> None:
        self.published_at = timezone.now()

    @transition(
        field=status,
        source=Status.PUBLISHED,
        target=Status.DRAFT,
        custom={
            "admin": True,
            "label": "Unpublish",
            "help_text": "Take it off the storefront and back to draft.",
        },
    )
    def unpublish(self) -> None:
        self.published_at = None

    @transition(
        field=status,
        source=Status.PUBLISHED,
        target=Status.ARCHIVED,
        custom={
            "admin": True,
            "label": "Archive",
            "help_text": "Retire it: off the storefront, kept for orders and history.",
        },
    )
    def archive(self) -> None:
        """Take the product off sale; it keeps its publication date for the record."""

    @transition(
        field=status,
        source=Status.ARCHIVED,
        target=Status.DRAFT,
        custom={
            "admin": True,
            "label": "Restore to draft",
            "help_text": "Bring it back as a draft to edit and publish again.",
        },
    )
    def restore(self) -> None:
        self.published_at = None

    def publish_problems(self) -> dict[str, list[str]]:
        """Return what stops this product from being published, by field."""
        problems: dict[str, list[str]] = {}
        if not self.name.strip():
            problems["name"] = ["A published product needs a name."]
        if self.price is None or self.price <= 0:
            problems["price"] = ["A published product needs a price above zero."]
        if self.category_id is None:
            problems["category"] = ["A published product needs a category."]
        elif not self.category.is_active:
            problems["category"] = [f"The category {self.category.name!r} is not active."]
        return problems


# --- products as a settings scope (catalog/settings_registry.py) -------------------------
# Imported here, not at the top: an appended block, so that catalog's model code above
# stays as it is; the settings app is platform (no cycle).
import uuid  # noqa: E402

from pms_backend.encryption.attributes import EncryptedAttribute  # noqa: E402
from pms_backend.shopsettings.models import CIPHER, PLAIN, Setting, StoredJsonMixin  # noqa: E402


class ProductSetting(StoredJsonMixin, models.Model):
    """A setting's value for one product: it beats the global value and the default."""

    # A UUID known before saving: the ciphertext of a sensitive value is bound to it.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    setting = models.ForeignKey(Setting, on_delete=models.CASCADE, related_name="product_values")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="setting_values")
    value_json = models.TextField(blank=True)
    value_ct = models.TextField(blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    value_secret = EncryptedAttribute("value_ct")

    class Meta:
        # The table the settings app created: the model moved, its rows did not.
        db_table = "settings_productsetting"
        ordering = ["setting", "product"]
        constraints = [
            models.UniqueConstraint(
                fields=["setting", "product"], name="product_setting_once_per_product"
            ),
            models.CheckConstraint(
                condition=(PLAIN & ~CIPHER) | (~PLAIN & CIPHER),
                name="product_setting_one_value",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.setting_id} for product {self.product_id}"


# The products a setting has values for, and the settings a product has values of
# (setting.products, product.settings): declared on this side, which knows both.
Product.add_to_class(
    "settings",
    models.ManyToManyField(
        Setting,
        through=ProductSetting,
        related_name="products",
        blank=True,
        help_text="Settings with a value of their own for this product.",
    ),
)
