from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.text import slugify
from tqdm import tqdm

from audit.actors import Actor
from catalog import demo, services
from catalog.models import Category, Product

BATCH_SIZE = 2000


class Command(BaseCommand):
    help = (
        "Load a believable demo catalog: a nested category tree and N products in all "
        "three statuses. Deterministic for a given --seed; re-running adds nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--products", type=int, default=200, help="How many products (default 200)."
        )
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, products: int, seed: int, no_progress: bool, **options):
        if not 0 <= products <= 2_000_000:
            raise CommandError("--products must be from 0 to 2,000,000.")
        if not 0 <= seed <= 2**31:
            raise CommandError("--seed must be from 0 to 2^31.")
        actor = Actor.system("seed_database")
        categories = self._categories(actor)
        leaves = demo.leaf_names()
        created = 0
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
                bar.update(len(batch))
        self.stdout.write(
            f"Demo catalog ready: {len(categories)} categories, {created} new products "
            f"({products - created} already present), seed {seed}."
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
            )
            for p in batch
        ]
        return services.product_bulk_create(actor=actor, products=rows)
