"""Lines count what was shipped and refunded; orders count what was paid back.

Orders completed before fulfilments existed were shipped whole (completing sold every
unit), and Refunded ones were paid back whole: their counts start there.
"""

from django.db import migrations, models


def backfill(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    OrderItem = apps.get_model("orders", "OrderItem")
    shipped = ["completed", "refunded"]
    OrderItem.objects.filter(order__status__in=shipped).update(
        quantity_fulfilled=models.F("quantity")
    )
    OrderItem.objects.filter(order__status="refunded").update(
        quantity_refunded=models.F("quantity")
    )
    Order.objects.filter(status="refunded").update(refunded_amount=models.F("total"))


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_stock_tracked"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="refunded_amount",
            field=models.DecimalField(decimal_places=2, default=0, max_digits=14),
        ),
        migrations.AddField(
            model_name="orderitem",
            name="quantity_fulfilled",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="orderitem",
            name="quantity_refunded",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("refunded_amount__gte", 0), ("refunded_amount__lte", models.F("total"))
                ),
                name="order_refunded_within_total",
            ),
        ),
        migrations.AddConstraint(
            model_name="orderitem",
            constraint=models.CheckConstraint(
                condition=models.Q(("quantity_fulfilled__lte", models.F("quantity"))),
                name="order_item_fulfilled_within_quantity",
            ),
        ),
        migrations.AddConstraint(
            model_name="orderitem",
            constraint=models.CheckConstraint(
                condition=models.Q(("quantity_refunded__lte", models.F("quantity"))),
                name="order_item_refunded_within_quantity",
            ),
        ),
        # After the constraints: a table with pending trigger events cannot be altered.
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
