import functools
import re
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
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


MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_LENGTH = 500


def _storable_text(text: str) -> bool:
    # PostgreSQL's jsonb cannot hold NUL, and no encoder can write an unpaired surrogate.
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def _attribute_problem(name: Any, item: Any) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        return "Attribute names must be 1 to 100 characters."
    if not _storable_text(name) or (isinstance(item, str) and not _storable_text(item)):
        return f"Attribute {name!r}: null and surrogate characters are not allowed."
    if isinstance(item, dict | list):
        return f"Attribute {name!r}: values must be strings, numbers, booleans or null."
    if isinstance(item, str) and len(item) > MAX_ATTRIBUTE_LENGTH:
        return f"Attribute {name!r}: at most {MAX_ATTRIBUTE_LENGTH} characters."
    return ""


def validate_attributes(value: Any) -> Any:
    """Raise ``ValidationError`` unless ``value`` is a product's attributes as the catalog
    keeps them: a JSON object of at most 50 names, each value a short string, a number, a
    boolean or null. The one rule for the API, the admin, imports and the services."""
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object of name → value.")
    if len(value) > MAX_ATTRIBUTES:
        raise ValidationError(f"At most {MAX_ATTRIBUTES} attributes.")
    for name, item in value.items():
        problem = _attribute_problem(name, item)
        if problem:
            raise ValidationError(problem)
    return value


def publish_problems_of(
    *, name: str, price: Decimal | None, category: str | None, category_active: bool = True
) -> dict[str, list[str]]:
    """Return what stops a product from being published, by field: the one statement of the
    publish rules (a name, a price above zero, an active category). ``category`` is how the
    caller names the product's category (None: it has none)."""
    problems: dict[str, list[str]] = {}
    if not name.strip():
        problems["name"] = ["A published product needs a name."]
    if price is None or price <= 0:
        problems["price"] = ["A published product needs a price above zero."]
    if category is None:
        problems["category"] = ["A published product needs a category."]
    elif not category_active:
        problems["category"] = [f"The category {category!r} is not active."]
    return problems


def status_path(source: str, target: str) -> tuple[str, ...]:
    """Return the transitions that take a product from ``source`` to ``target`` status,
    fewest first (none when they are the same), read from the status machine itself."""
    return _status_paths()[(source, target)]


@functools.cache
def _status_paths() -> dict[tuple[str, str], tuple[str, ...]]:
    moves = [
        (str(t.source), t.name, str(t.target))
        for t in Product._meta.get_field("status").get_all_transitions(Product)
    ]
    paths: dict[tuple[str, str], tuple[str, ...]] = {}
    for start in Product.Status.values:
        reached: dict[str, tuple[str, ...]] = {start: ()}
        frontier = [start]
        while frontier:  # breadth first: the first path found to a status is a shortest
            step = []
            for source, name, target in moves:
                if source in frontier and target not in reached:
                    reached[target] = (*reached[source], name)
                    step.append(target)
            frontier = step
        paths.update(((start, end), path) for end, path in reached.items())
    return paths


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

    sku = models.CharField("SKU", max_length=64, unique=True, validators=[SKU_VALIDATOR])
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

    def clean(self) -> None:
        """Refuse attributes the catalog does not keep (the admin's form calls this)."""
        super().clean()
        try:
            validate_attributes(self.attributes)
        except ValidationError as exc:
            raise ValidationError({"attributes": exc.messages}) from exc

    def publish_problems(self) -> dict[str, list[str]]:
        """Return what stops this product from being published, by field."""
        category = self.category if self.category_id is not None else None
        problems = publish_problems_of(
            name=self.name,
            price=self.price,
            category=category.name if category is not None else None,
            category_active=category.is_active if category is not None else True,
        )
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
