"""A believable, deterministic demo catalog: a category tree and generated products, a
share of them sold in variants (apparel by Size and Colour, the rest by Colour)."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

CATEGORY_TREE: dict[str, dict] = {
    "Apparel": {
        "Men": {"Shirts": {}, "Trousers": {}, "Jackets": {}},
        "Women": {"Dresses": {}, "Tops": {}, "Coats": {}},
        "Kids": {},
    },
    "Home & Kitchen": {
        "Cookware": {"Pans": {}, "Pots": {}},
        "Tableware": {},
        "Textiles": {"Bedding": {}, "Towels": {}},
    },
    "Outdoor": {"Camping": {"Tents": {}, "Sleeping bags": {}}, "Cycling": {}, "Hiking": {}},
    "Electronics": {"Audio": {"Headphones": {}, "Speakers": {}}, "Accessories": {}},
    "Stationery": {"Notebooks": {}, "Pens": {}},
}

ADJECTIVES = [
    "Classic",
    "Everyday",
    "Premium",
    "Compact",
    "Rugged",
    "Lightweight",
    "Organic",
    "Vintage",
    "Modern",
    "Essential",
    "Deluxe",
    "Travel",
    "Weatherproof",
    "Soft",
    "Nordic",
]
MATERIALS = [
    "Cotton",
    "Linen",
    "Wool",
    "Bamboo",
    "Steel",
    "Cast-iron",
    "Oak",
    "Leather",
    "Recycled",
    "Ceramic",
    "Merino",
    "Canvas",
    "Aluminium",
    "Stoneware",
    "Silk",
]
COLOURS = ["Black", "White", "Navy", "Olive", "Sand", "Charcoal", "Rust", "Sky", "Forest"]
SIZES = ["XS", "S", "M", "L", "XL"]
APPAREL = frozenset({"Shirts", "Trousers", "Jackets", "Dresses", "Tops", "Coats", "Kids"})
# How many things product ``index`` sells, by ``index % 5``: one (a product without
# variants, its own single variant) or 2 to 5 variants. Five products in a row sell
# 1 + 2 + 3 + 4 + 5 = 15: three on average, so ``--products 100000`` makes 300,000.
VARIANT_COUNTS = (1, 2, 3, 4, 5)
NOUNS_BY_LEAF = {
    "Shirts": ["Oxford Shirt", "Flannel Shirt", "Polo", "Henley"],
    "Trousers": ["Chinos", "Cargo Trousers", "Jeans", "Joggers"],
    "Jackets": ["Field Jacket", "Rain Jacket", "Bomber", "Gilet"],
    "Dresses": ["Wrap Dress", "Shirt Dress", "Midi Dress"],
    "Tops": ["Blouse", "Tank Top", "Sweater", "Cardigan"],
    "Coats": ["Trench Coat", "Parka", "Peacoat"],
    "Kids": ["Hoodie", "Romper", "Rain Boots", "Beanie"],
    "Pans": ["Frying Pan", "Skillet", "Wok", "Saute Pan"],
    "Pots": ["Stock Pot", "Dutch Oven", "Saucepan"],
    "Tableware": ["Dinner Plate", "Mug", "Bowl", "Serving Platter"],
    "Bedding": ["Duvet Cover", "Pillowcase Set", "Fitted Sheet"],
    "Towels": ["Bath Towel", "Hand Towel", "Beach Towel"],
    "Tents": ["Two-Person Tent", "Tarp Shelter", "Family Tent"],
    "Sleeping bags": ["Down Sleeping Bag", "Summer Sleeping Bag"],
    "Cycling": ["Bike Light", "Saddle Bag", "Bottle Cage", "Helmet"],
    "Hiking": ["Daypack", "Trekking Poles", "Water Bottle"],
    "Headphones": ["Wireless Headphones", "Earbuds"],
    "Speakers": ["Bluetooth Speaker", "Bookshelf Speaker"],
    "Accessories": ["USB-C Cable", "Charger", "Laptop Sleeve"],
    "Notebooks": ["Dotted Notebook", "Sketchbook", "Planner"],
    "Pens": ["Fountain Pen", "Gel Pen Set", "Pencil Case"],
}


def category_nodes() -> Iterator[tuple[str, str | None, int]]:
    """Yield ``(name, parent name or None, position)``, parents before their children."""

    def walk(tree: dict, parent: str | None) -> Iterator[tuple[str, str | None, int]]:
        for position, (name, children) in enumerate(tree.items()):
            yield name, parent, position
            yield from walk(children, name)

    yield from walk(CATEGORY_TREE, None)


def leaf_names() -> list[str]:
    parents = {parent for _, parent, _ in category_nodes() if parent}
    return [name for name, _, _ in category_nodes() if name not in parents]


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    description: str
    price: Decimal
    category: str
    attributes: dict
    status: str
    published_days_ago: int
    # Declared options ([{"name", "values"}]) and the variants' combinations, in making
    # order; both empty for a product without variants.
    options: tuple = ()
    variants: tuple = ()
    weight_grams: int | None = None


def demo_sku_prefix(seed: int) -> str:
    """Return how the SKUs of the demo catalog for ``seed`` begin."""
    return f"DEMO{seed}-"


def demo_sku(seed: int, index: int) -> str:
    """Return the SKU of product ``index`` of the demo catalog for ``seed``."""
    return f"{demo_sku_prefix(seed)}{index:07d}"


def demo_product(seed: int, index: int, leaves: list[str]) -> DemoProduct:
    """Return product ``index`` of the demo catalog for ``seed`` (same inputs, same product)."""
    rng = random.Random(f"{seed}:{index}")
    leaf = rng.choice(leaves)
    noun = rng.choice(NOUNS_BY_LEAF.get(leaf, ["Item"]))
    name = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {noun}"
    colour = rng.choice(COLOURS)
    # Prices cluster like a shop's: mostly everyday items, a tail of expensive ones.
    price = Decimal(str(round(min(rng.lognormvariate(3.3, 0.8), 2500), 0))) - Decimal("0.01")
    price = max(price, Decimal("0.99"))
    roll = rng.random()
    status = "published" if roll < 0.7 else ("draft" if roll < 0.9 else "archived")
    attributes: dict[str, object] = {"colour": colour}
    if leaf in APPAREL:
        attributes["size"] = rng.choice(SIZES)
    weight = attributes["weight_g"] = rng.randint(50, 5000)
    published_days_ago = rng.randint(0, 365)
    count = VARIANT_COUNTS[index % len(VARIANT_COUNTS)]
    if count == 1:
        return DemoProduct(
            sku=demo_sku(seed, index),
            name=f"{name} ({colour})",
            description=f"{name} in {colour.lower()}. Part of the demo catalog.",
            price=price,
            category=leaf,
            attributes=attributes,
            status=status,
            published_days_ago=published_days_ago,
        )
    options, variants = _demo_options(random.Random(f"{seed}:{index}:options"), leaf, count)
    return DemoProduct(
        sku=demo_sku(seed, index),
        name=name,
        description=f"{name}, in {counted_options(options)}. Part of the demo catalog.",
        price=price,
        category=leaf,
        attributes={"weight_g": weight},
        status=status,
        published_days_ago=published_days_ago,
        options=options,
        variants=variants,
        weight_grams=weight,
    )


def _demo_options(rng: random.Random, leaf: str, count: int) -> tuple[tuple, tuple]:
    """Return the options and ``count`` combinations of a product sold in variants:
    apparel by Size (consecutive sizes) and Colour, anything else by Colour."""
    if leaf in APPAREL:
        colours = rng.sample(COLOURS, 1 if count <= 3 else 2)
        size_count = -(-count // len(colours))
        start = rng.randint(0, len(SIZES) - size_count)
        sizes = SIZES[start : start + size_count]
        options = ({"name": "Size", "values": sizes}, {"name": "Colour", "values": colours})
        combinations = itertools.islice(itertools.product(sizes, colours), count)
        return options, tuple({"Size": s, "Colour": c} for s, c in combinations)
    colours = rng.sample(COLOURS, count)
    return ({"name": "Colour", "values": colours},), tuple({"Colour": c} for c in colours)


def counted_options(options) -> str:
    """Return the options as a phrase: "3 sizes and 2 colours"."""
    return " and ".join(
        f"{len(o['values'])} {o['name'].lower()}{'s' if len(o['values']) > 1 else ''}"
        for o in options
    )


def demo_variant_sku(product_sku: str, values: dict[str, str]) -> str:
    """Return the SKU of a demo variant: ``<product SKU>-<VALUE>-<VALUE>``."""
    parts = (re.sub(r"[^A-Za-z0-9]", "", value).upper() for value in values.values())
    return "-".join([product_sku, *parts])


def published_at_for(product: DemoProduct, now):
    if product.status == "draft":
        return None
    return now - timedelta(days=product.published_days_ago)
