from datetime import datetime, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.utils.text import slugify
from tqdm import tqdm

from audit.actors import Actor
from catalog import demo, services
from catalog.models import Category, Product
from catalog.variants import variant_build, variants_bulk_create
from pms_backend.monitoring.periods import Granularity, period_start
from pms_backend.monitoring.services import metrics_collect
from pms_backend.plurals import counted
from pms_backend.seeding import HISTORY_DAYS, DemoRun, seeding_steps

BATCH_SIZE = 2000
MAX_STEP_SIZE = 100_000


class Command(BaseCommand):
    help = (
        "Load a believable demo shop: a nested category tree and N products in all three "
        "statuses, four in five sold in 2 to 5 variants (apparel by Size and Colour, the rest "
        "by Colour: 3N things to sell), then what the other apps add (stock for the "
        "published variants and products, a month of orders in every status) and the "
        "metric history of that month, so the dashboard is full. Deterministic for a given "
        "--seed; re-running adds nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--products", type=int, default=200, help="How many products (default 200)."
        )
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        for step in seeding_steps():
            if step.size_option:
                parser.add_argument(
                    f"--{step.size_option}",
                    type=int,
                    default=step.default_size,
                    help=step.size_help,
                )
        parser.add_argument(
            "--catalog-only",
            action="store_true",
            help="Only the categories and products: no stock, orders or metric history.",
        )
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Place the demo stock and orders with DJANGO_DEBUG=false too: their events, "
            "demo customers included, reach every active webhook endpoint and live feed.",
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(
        self, *args, products: int, seed: int, catalog_only: bool, no_progress: bool, **options
    ):
        if not 0 <= products <= 2_000_000:
            raise CommandError("--products must be from 0 to 2,000,000.")
        if not 0 <= seed <= 2**31:
            raise CommandError("--seed must be from 0 to 2^31.")
        for step in seeding_steps():
            if step.size_option and not 0 <= options[step.size_option] <= MAX_STEP_SIZE:
                raise CommandError(f"--{step.size_option} must be from 0 to {MAX_STEP_SIZE:,}.")
        if not (catalog_only or settings.DEBUG or options["allow_production"]):
            # Checked before anything is written: a production shop gets nothing half-made.
            raise CommandError(
                "With DJANGO_DEBUG=false this would place demo orders in what may be a live "
                "shop, and send their events (demo customers included) to every active webhook "
                "endpoint. Pass --catalog-only for the products alone, or --allow-production."
            )
        actor = Actor.system("seed_database")
        categories = self._categories(actor)
        leaves = demo.leaf_names()
        created = variants = 0
        now = timezone.now()
        with tqdm(
            total=products, unit="product", disable=no_progress, file=self.stderr._out
        ) as bar:
            for start in range(0, products, BATCH_SIZE):
                batch = [
                    demo.demo_product(seed, i, leaves)
                    for i in range(start, min(start + BATCH_SIZE, products))
                ]
                created += self._insert(batch, categories, actor, now)
                variants += self._insert_variants(batch, actor)
                bar.update(len(batch))
        self.stdout.write(
            f"Demo catalog ready: {counted(len(categories), 'category', 'categories')}, "
            f"{counted(created, 'new product')} "
            f"({products - created} already present), {counted(variants, 'new variant')}, "
            f"seed {seed}."
        )
        if not catalog_only:
            self._rest_of_the_shop(seed, products, actor, options)

    def _rest_of_the_shop(self, seed: int, products: int, actor: Actor, options) -> None:
        """Run the other apps' seeding steps on this run's products, then collect the
        metric history of the days they cover, as ``collect_metrics --since`` would."""
        # By prefix, not by a range of SKUs: the database's collation may order "-" and
        # digits otherwise than code points do.
        wanted = {demo.demo_sku(seed, index) for index in range(products)}
        product_ids = [
            pk
            for pk, sku in Product.objects.filter(sku__startswith=demo.demo_sku_prefix(seed))
            .order_by("pk")
            .values_list("pk", "sku")
            if sku in wanted
        ]
        for step in seeding_steps():
            run = DemoRun(
                seed=seed,
                size=options[step.size_option] if step.size_option else 0,
                product_ids=product_ids,
                actor=actor,
                now=timezone.now(),
            )
            self.stdout.write(step.run(run))
        collected = metrics_collect(since=_history_start(timezone.now()))
        self.stdout.write(
            f"Metric history: {collected.rows} snapshot{pluralize(collected.rows)} of the last "
            f"{HISTORY_DAYS} days."
        )

    def _categories(self, actor: Actor) -> dict[str, Category]:
        by_name: dict[str, Category] = {}
        for name, parent, position in demo.category_nodes():
            slug = slugify(name)
            category = Category.objects.filter(slug=slug).first()
            if category is None:
                category = services.category_create(
                    actor=actor,
                    name=name,
                    slug=slug,
                    parent=by_name.get(parent) if parent else None,
                    position=position,
                )
            by_name[name] = category
        return by_name

    def _insert(self, batch, categories, actor: Actor, now) -> int:
        rows = [
            Product(
                sku=p.sku,
                name=p.name,
                slug=f"{slugify(p.name)}-{p.sku.lower()}"[:220],
                description=p.description,
                price=p.price,
                currency=settings.PMS_DEFAULT_CURRENCY,
                category=categories[p.category],
                attributes=p.attributes,
                status=p.status,
                published_at=demo.published_at_for(p, now),
                options=list(p.options),
            )
            for p in batch
        ]
        return services.product_bulk_create(actor=actor, products=rows)

    def _insert_variants(self, batch, actor: Actor) -> int:
        """Make the variants of the batch's products sold in variants (those missing)."""
        wanted = {p.sku: p for p in batch if p.variants}
        if not wanted:
            return 0
        parents = Product.objects.filter(sku__in=list(wanted), parent__isnull=True)
        rows = [
            variant_build(
                parent,
                values,
                sku=demo.demo_variant_sku(parent.sku, values),
                weight_grams=wanted[parent.sku].weight_grams,
            )
            for parent in parents
            for values in wanted[parent.sku].variants
        ]
        return variants_bulk_create(actor=actor, variants=rows)


def _history_start(now: datetime) -> datetime:
    """The start of the first day of the demo's history."""
    return period_start(now, Granularity.DAY) - timedelta(days=HISTORY_DAYS)
