"""The per-product values of settings now belong to the catalog (the settings app is
platform and names no product). The model takes over the settings app's table as it is
(``settings_productsetting``: same columns, constraints and rows): this migration changes
Django's state only and runs no SQL."""

import uuid

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0002_product_name_idx"),
        ("settings", "0002_productsetting_to_catalog"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ProductSetting",
                    fields=[
                        (
                            "id",
                            models.UUIDField(
                                default=uuid.uuid4,
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("value_json", models.TextField(blank=True)),
                        ("value_ct", models.TextField(blank=True, editable=False)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "product",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="setting_values",
                                to="catalog.product",
                            ),
                        ),
                        (
                            "setting",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="product_values",
                                to="settings.setting",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "settings_productsetting",
                        "ordering": ["setting", "product"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("setting", "product"),
                                name="product_setting_once_per_product",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    models.Q(
                                        models.Q(("value_json", ""), _negated=True),
                                        ("value_ct", ""),
                                    ),
                                    models.Q(
                                        ("value_json", ""),
                                        models.Q(("value_ct", ""), _negated=True),
                                    ),
                                    _connector="OR",
                                ),
                                name="product_setting_one_value",
                            ),
                        ],
                    },
                ),
                migrations.AddField(
                    model_name="product",
                    name="settings",
                    field=models.ManyToManyField(
                        blank=True,
                        help_text="Settings with a value of their own for this product.",
                        related_name="products",
                        through="catalog.ProductSetting",
                        to="settings.setting",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
