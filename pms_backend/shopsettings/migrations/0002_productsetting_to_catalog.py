"""The per-product values of settings move to the catalog app (catalog.ProductSetting):
the platform's settings app no longer names a product. The table, its columns and its
rows stay as they are (catalog's model keeps ``db_table = "settings_productsetting"``):
this migration changes Django's state only and runs no SQL."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("settings", "0001_initial"),
        # That migration reads this app's historical ProductSetting: it runs while the
        # model is still here.
        ("inventory", "0002_stock_threshold_from_settings"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="setting", name="products"),
                migrations.DeleteModel(name="ProductSetting"),
            ],
            database_operations=[],
        ),
    ]
