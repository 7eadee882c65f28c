import functools
import re
from decimal import Decimal
from typing import Any

from django.contrib.postgres.search import SearchVectorField
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


MAX_OPTIONS = 3
MAX_OPTION_VALUES = 100
MAX_OPTION_TEXT = 100


def gtin_problem(code: str) -> str:
    """Return what is wrong with a barcode (GTIN-8, UPC-A/GTIN-12, EAN-13/GTIN-13 or
    GTIN-14), or "" when its length and check digit are right."""
    if not (code.isascii() and code.isdigit()) or len(code) not in (8, 12, 13, 14):
        return "A barcode is 8, 12, 13 or 14 digits (GTIN-8, UPC-A, EAN-13, GTIN-14)."
    body, check = code[:-1], int(code[-1])
    # From the right, the digits before the check digit weigh 3, 1, 3, 1, ...
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    expected = (10 - total % 10) % 10
    if check != expected:
        return f"The check digit of {code} should be {expected}, not {check}."
    return ""


def validate_gtin(code: str) -> None:
    problem = gtin_problem(code)
    if problem:
        raise ValidationError(problem)


def options_problem(options: Any) -> str:
    """Return what is wrong with a product's declared options, or "": a list of at most 3
    ``{"name", "values"}``, names unique, each with 1 to 100 unique short values."""
    if not isinstance(options, list):
        return 'Options are a list of {"name", "values"}.'
    if len(options) > MAX_OPTIONS:
        return f"At most {MAX_OPTIONS} options (such as Size, Colour, Material)."
    names: set[str] = set()
    for option in options:
        problem = _option_problem(option, names)
        if problem:
            return problem
    return ""


def _option_problem(option: Any, names: set[str]) -> str:
    if not isinstance(option, dict) or set(option) != {"name", "values"}:
        return 'Each option is {"name": ..., "values": [...]}.'
    name, values = option["name"], option["values"]
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_OPTION_TEXT:
        return f"Option names are 1 to {MAX_OPTION_TEXT} characters."
    if name.strip().lower() in names:
        return f"The option {name!r} is declared twice."
    names.add(name.strip().lower())
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_OPTION_VALUES:
        return f"Option {name!r} needs 1 to {MAX_OPTION_VALUES} values."
    if any(not isinstance(v, str) or not 1 <= len(v.strip()) <= MAX_OPTION_TEXT for v in values):
        return f"Option {name!r}: values are 1 to {MAX_OPTION_TEXT} characters."
    if len({v.strip().lower() for v in values}) != len(values):
        return f"Option {name!r} lists a value twice."
    if not all(_storable_text(t) for t in [name, *values]):
        return f"Option {name!r}: null and surrogate characters are not allowed."
    return ""


def variant_name(product: "Product", values: dict[str, str]) -> str:
    """A variant's name: its product's, with its option values ("Shirt (M / Red)")."""
    return f"{product.name} ({' / '.join(values.values())})"[:200]


def options_key(option_values: dict[str, str]) -> str:
    """The canonical text of a variant's option values: one per product (unique)."""
    return "|".join(f"{name}={option_values[name]}" for name in sorted(option_values))


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
    # Variants, as django-oscar (parent and child products) and Magento (configurable and
    # simple products) keep them: a product that declares ``options`` sells through its
    # variants, child products with their own SKU, barcode, price, weight and stock and one
    # combination of ``option_values``; a product without variants is its own single
    # variant. The parent's status governs its variants' (they follow it).
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="variants"
    )
    options = models.JSONField(default=list, blank=True)
    option_values = models.JSONField(default=dict, blank=True)
    options_key = models.CharField(max_length=1000, blank=True, default="", editable=False)
    barcode = models.CharField(
        max_length=14, null=True, blank=True, unique=True, validators=[validate_gtin]
    )
    weight_grams = models.PositiveIntegerField(null=True, blank=True)
    track_stock = models.BooleanField(default=True)
    # Selling beyond stock (catalog/backorders.py says how these combine): units ordered
    # beyond what is available wait on the variant's stock row (inventory counts them
    # under the same lock as reservations) and are allocated, first come first served,
    # when stock arrives.
    allow_backorder = models.BooleanField(
        "allow backorders",
        default=False,
        help_text="Accept orders beyond stock; the units wait for the next arrival.",
    )
    backorder_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="At most this many units waiting at once (empty: no limit).",
    )
    preorder_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Accept orders without stock until this moment (a product not out yet).",
    )
    preorder_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="At most this many units preordered and waiting at once (empty: no limit).",
    )
    status = FSMField(default=Status.DRAFT, choices=Status.choices, protected=True)
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gte=0), name="product_price_gte_0"),
            models.UniqueConstraint(
                fields=["parent", "options_key"],
                condition=models.Q(parent__isnull=False),
                name="variant_options_unique",
            ),
            # A variant declares no options of its own: variants are one level deep.
            models.CheckConstraint(
                condition=models.Q(parent__isnull=True) | models.Q(options=[]),
                name="variant_has_no_options",
            ),
        ]
        indexes = [
            # The lists (storefront and staff) show products, not their variants; staff see
            # every status in name order (without the second: a full sort).
            models.Index(
                fields=["status", "name", "id"],
                condition=models.Q(parent__isnull=True),
                name="product_listed_status_idx",
            ),
            models.Index(
                fields=["name", "id"],
                condition=models.Q(parent__isnull=True),
                name="product_listed_name_idx",
            ),
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
        if self.options and self.pk is not None:
            prices = list(self.variants.values_list("price", flat=True))
            if not prices:
                problems["variants"] = [
                    "A product with options sells through its variants: make them first."
                ]
            elif min(prices) <= 0:
                problems["variants"] = ["Every variant needs a price above zero."]
        return problems


class ProductSearch(models.Model):
    """What search reads of a listed product (never a variant): its weighted words and
    name, the option values its variants offer and the range of their prices.

    Written by PostgreSQL alone: triggers on the product table (migration 0006) rewrite a
    product's row in the statement that changes the product or one of its variants, so
    every write path (services, bulk imports, the seed, a hand at the psql prompt) leaves
    it current in its own transaction. On SQLite (development) the table stays empty and
    search falls back to a plain match (``catalog.search``).
    """

    product = models.OneToOneField(
        Product,
        primary_key=True,
        on_delete=models.DO_NOTHING,  # the delete trigger removes the row
        related_name="search",
    )
    name = models.CharField(max_length=200)
    # Weights: A the name; B SKUs, barcodes and option values (the product's and its
    # variants'); C the description and attribute values. The 'simple' configuration:
    # no language's stemming or stop words (SKUs and names of any language stay whole).
    document = SearchVectorField()
    # [{"name": "Size", "value": "M"}, ...]: what its variants offer, once each.
    option_values = models.JSONField(default=list)
    min_price = models.DecimalField(max_digits=12, decimal_places=2)
    max_price = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"search row of product {self.product_id}"


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
