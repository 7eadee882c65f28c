"""Product search: a search row per listed product, kept by triggers (PostgreSQL)."""

import django.contrib.postgres.search
import django.db.models.deletion
from django.db import migrations, models


# The search row of each listed product, rewritten by the statement that changes it or
# one of its variants (statement triggers: a bulk insert of 2,000 variants rewrites their
# few hundred products once, not once per variant).
REFRESH = r"""
-- Words as the search box splits them (catalog.search.search_words): letters and digits,
-- anything else a space, so "T-shirt" is "t" and "shirt" and "DEMO1-0000003" is "demo1"
-- and "0000003" on both sides (the text parser alone reads "-0000003" as a number).
CREATE OR REPLACE FUNCTION catalog_search_words(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT regexp_replace($1, '[^[:alnum:]]+', ' ', 'g')
$$;

-- What the search row of each listed product among ids holds, read now.
CREATE OR REPLACE FUNCTION catalog_search_rows(ids bigint[])
RETURNS TABLE (id bigint, name varchar, document tsvector, option_values jsonb,
               min_price numeric, max_price numeric)
LANGUAGE sql STABLE AS $$
SELECT p.id,
       p.name,
       setweight(to_tsvector('simple', catalog_search_words(p.name)), 'A')
       || setweight(to_tsvector('simple',
                    catalog_search_words(concat_ws(' ', p.sku, p.barcode, v.words))), 'B')
       || setweight(to_tsvector('simple',
                    catalog_search_words(concat_ws(' ', p.description, a.words))), 'C'),
       coalesce(o.pairs, '[]'::jsonb),
       coalesce(v.min_price, p.price),
       coalesce(v.max_price, p.price)
  FROM catalog_product p
  LEFT JOIN LATERAL (
       SELECT string_agg(concat_ws(' ', c.sku, c.barcode, (
                  SELECT string_agg(e.value, ' ')
                    FROM jsonb_each_text(CASE WHEN jsonb_typeof(c.option_values) = 'object'
                                              THEN c.option_values ELSE '{}' END) e
              )), ' ') AS words,
              min(c.price) AS min_price,
              max(c.price) AS max_price
         FROM catalog_product c
        WHERE c.parent_id = p.id
  ) v ON true
  LEFT JOIN LATERAL (
       SELECT jsonb_agg(jsonb_build_object('name', pair.name, 'value', pair.value)
                        ORDER BY pair.name, pair.value) AS pairs
         FROM (
              SELECT DISTINCT e.key AS name, e.value
                FROM catalog_product c,
                     jsonb_each_text(CASE WHEN jsonb_typeof(c.option_values) = 'object'
                                          THEN c.option_values ELSE '{}' END) e
               WHERE c.parent_id = p.id AND e.value IS NOT NULL
         ) pair
  ) o ON true
  LEFT JOIN LATERAL (
       SELECT string_agg(e.value, ' ') AS words
         FROM jsonb_each_text(CASE WHEN jsonb_typeof(p.attributes) = 'object'
                                   THEN p.attributes ELSE '{}' END) e
  ) a ON true
 WHERE p.id = ANY(ids) AND p.parent_id IS NULL;
$$;

-- New products: nobody else can see them yet, their rows are written at once.
CREATE OR REPLACE FUNCTION catalog_search_add(ids bigint[]) RETURNS void
LANGUAGE sql AS $$
INSERT INTO catalog_productsearch
       (product_id, name, document, option_values, min_price, max_price)
SELECT * FROM catalog_search_rows(ids);
$$;

-- Products that may have rows: each statement of this (volatile) function reads the
-- database afresh, and the rows are written in three steps so that two transactions
-- changing one product (its name, and a variant's SKU) cannot leave it with either's
-- words alone: each locks the products' rows (in product order) and only then reads what
-- it writes, so the second reads after the first has committed.
CREATE OR REPLACE FUNCTION catalog_search_refresh(ids bigint[]) RETURNS void
LANGUAGE sql AS $$
DELETE FROM catalog_productsearch s
 WHERE s.product_id = ANY(ids)
   AND NOT EXISTS (
       SELECT 1 FROM catalog_product p WHERE p.id = s.product_id AND p.parent_id IS NULL
   );
INSERT INTO catalog_productsearch
       (product_id, name, document, option_values, min_price, max_price)
SELECT p.id, '', ''::tsvector, '[]'::jsonb, 0, 0
  FROM catalog_product p
 WHERE p.id = ANY(ids) AND p.parent_id IS NULL
 ORDER BY p.id
ON CONFLICT (product_id) DO NOTHING;
SELECT 1 FROM catalog_productsearch
 WHERE product_id = ANY(ids) ORDER BY product_id FOR UPDATE;
UPDATE catalog_productsearch s
   SET name = fresh.name,
       document = fresh.document,
       option_values = fresh.option_values,
       min_price = fresh.min_price,
       max_price = fresh.max_price
  FROM catalog_search_rows(ids) AS fresh
 WHERE s.product_id = fresh.id;
$$;

CREATE OR REPLACE FUNCTION catalog_search_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM catalog_search_add(ARRAY(SELECT n.id FROM new_rows n WHERE n.parent_id IS NULL));
    PERFORM catalog_search_refresh(
        ARRAY(SELECT DISTINCT n.parent_id FROM new_rows n WHERE n.parent_id IS NOT NULL)
    );
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION catalog_search_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Only rows whose searched columns changed (a status change or a stock-free save
    -- rewrites nothing); a variant moved to another product refreshes both.
    PERFORM catalog_search_refresh(ARRAY(
        SELECT DISTINCT unnest(ARRAY[coalesce(n.parent_id, n.id), o.parent_id])
          FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE (n.name, n.sku, n.barcode, n.description, n.attributes, n.option_values,
                n.price, n.parent_id)
               IS DISTINCT FROM
               (o.name, o.sku, o.barcode, o.description, o.attributes, o.option_values,
                o.price, o.parent_id)
    ));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION catalog_search_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM catalog_search_refresh(
        ARRAY(SELECT DISTINCT coalesce(o.parent_id, o.id) FROM old_rows o)
    );
    RETURN NULL;
END
$$;

CREATE TRIGGER catalog_product_search_inserted AFTER INSERT ON catalog_product
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_search_inserted();
CREATE TRIGGER catalog_product_search_updated AFTER UPDATE ON catalog_product
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_search_updated();
CREATE TRIGGER catalog_product_search_deleted AFTER DELETE ON catalog_product
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_search_deleted();

CREATE INDEX catalog_productsearch_document_idx
    ON catalog_productsearch USING gin (document);
CREATE INDEX catalog_productsearch_name_trgm_idx
    ON catalog_productsearch USING gin (name gin_trgm_ops);

SELECT catalog_search_add(ARRAY(SELECT id FROM catalog_product WHERE parent_id IS NULL));
"""

DROP = """
DROP TRIGGER IF EXISTS catalog_product_search_inserted ON catalog_product;
DROP TRIGGER IF EXISTS catalog_product_search_updated ON catalog_product;
DROP TRIGGER IF EXISTS catalog_product_search_deleted ON catalog_product;
DROP FUNCTION IF EXISTS catalog_search_inserted();
DROP FUNCTION IF EXISTS catalog_search_updated();
DROP FUNCTION IF EXISTS catalog_search_deleted();
DROP FUNCTION IF EXISTS catalog_search_refresh(bigint[]);
DROP FUNCTION IF EXISTS catalog_search_add(bigint[]);
DROP FUNCTION IF EXISTS catalog_search_rows(bigint[]);
DROP FUNCTION IF EXISTS catalog_search_words(text);
"""


def create_search(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite: search falls back to a plain match (catalog.search)
    with schema_editor.connection.cursor() as cursor:
        # A trusted extension since PostgreSQL 13: the database's owner may create it.
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        cursor.execute(REFRESH)


def drop_search(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0005_variants"),
    ]

    operations = [
        migrations.CreateModel(
            name="ProductSearch",
            fields=[
                (
                    "product",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="search",
                        serialize=False,
                        to="catalog.product",
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                ("document", django.contrib.postgres.search.SearchVectorField()),
                ("option_values", models.JSONField(default=list)),
                ("min_price", models.DecimalField(decimal_places=2, max_digits=12)),
                ("max_price", models.DecimalField(decimal_places=2, max_digits=12)),
            ],
            options={
                "default_permissions": (),
            },
        ),
        migrations.RunPython(create_search, drop_search),
    ]
