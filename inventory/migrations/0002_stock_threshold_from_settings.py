"""The low-stock threshold moves from each stock row to the settings service.

A row whose threshold differs from the shop-wide default (set from an older
PMS_LOW_STOCK_THRESHOLD) keeps it as that product's own value of the setting.
"""

from django.conf import settings
from django.db import migrations

KEY = "inventory.low_stock_threshold"


def keep_thresholds_that_differ(apps, schema_editor):
    Stock = apps.get_model("inventory", "Stock")
    Setting = apps.get_model("settings", "Setting")
    ProductSetting = apps.get_model("settings", "ProductSetting")
    differing = list(
        Stock.objects.exclude(low_stock_threshold=settings.PMS_LOW_STOCK_THRESHOLD).values_list(
            "product_id", "low_stock_threshold"
        )
    )
    if not differing:
        return
    setting, _ = Setting.objects.get_or_create(key=KEY, defaults={"type": "int"})
    ProductSetting.objects.bulk_create(
        [
            ProductSetting(setting=setting, product_id=product_id, value_json=str(threshold))
            for product_id, threshold in differing
        ],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0001_initial"),
        ("settings", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(keep_thresholds_that_differ, migrations.RunPython.noop),
        migrations.RemoveField(model_name="stock", name="low_stock_threshold"),
    ]
