"""Refunds and returns (RMA) of orders.

Orders refunded before refunds were recorded one by one get one refund of their whole
total for all their units, so that an order's ``refunded_amount`` is always the sum of
its refunds and each line's ``quantity_refunded`` the sum of its refund lines.
"""

import django.db.models.deletion
import django.db.models.expressions
import django.utils.timezone
import django_fsm
import orders.models
from django.db import migrations, models


def backfill(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    OrderItem = apps.get_model("orders", "OrderItem")
    Refund = apps.get_model("orders", "Refund")
    RefundLine = apps.get_model("orders", "RefundLine")
    refunded = (
        Order.objects.filter(status="refunded", total__gt=0, refunds__isnull=True)
        .order_by("pk")
        .values_list("pk", "total", "refunded_at", "updated_at")
    )
    batch: list = []

    def write(batch):
        refunds = Refund.objects.bulk_create(
            [
                Refund(
                    order_id=pk,
                    number=orders.models.new_refund_number(),
                    amount=total,
                    reason="refunded whole (before refunds were recorded one by one)",
                    created_by="",
                    created_at=at or updated,
                )
                for pk, total, at, updated in batch
            ]
        )
        by_order = {refund.order_id: refund.pk for refund in refunds}
        RefundLine.objects.bulk_create(
            [
                RefundLine(refund_id=by_order[order_id], item_id=item_id, quantity=quantity)
                for item_id, order_id, quantity in OrderItem.objects.filter(
                    order_id__in=list(by_order)
                ).values_list("pk", "order_id", "quantity")
            ]
        )

    for row in refunded.iterator(chunk_size=1000):
        batch.append(row)
        if len(batch) == 1000:
            write(batch)
            batch = []
    if batch:
        write(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0004_transfers"),
        ("orders", "0007_fulfilments"),
    ]

    operations = [
        migrations.CreateModel(
            name="Return",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "number",
                    models.CharField(
                        default=orders.models.new_return_number,
                        editable=False,
                        max_length=20,
                        unique=True,
                    ),
                ),
                (
                    "status",
                    django_fsm.FSMField(
                        choices=[
                            ("requested", "Requested"),
                            ("received", "Received"),
                            ("refunded", "Refunded"),
                            ("cancelled", "Cancelled"),
                        ],
                        default="requested",
                        max_length=50,
                        protected=True,
                    ),
                ),
                ("reason", models.CharField(blank=True, max_length=500)),
                ("cancellation_reason", models.CharField(blank=True, max_length=200)),
                ("requested_by", models.CharField(editable=False, max_length=200)),
                ("received_by", models.CharField(blank=True, editable=False, max_length=200)),
                (
                    "created_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                ("received_at", models.DateTimeField(blank=True, editable=False, null=True)),
                ("refunded_at", models.DateTimeField(blank=True, editable=False, null=True)),
                ("cancelled_at", models.DateTimeField(blank=True, editable=False, null=True)),
                (
                    "order",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="returns",
                        to="orders.order",
                    ),
                ),
            ],
            options={
                "ordering": ["created_at", "id"],
            },
            bases=(django_fsm.ConcurrentTransitionMixin, models.Model),
        ),
        migrations.CreateModel(
            name="Refund",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "number",
                    models.CharField(
                        default=orders.models.new_refund_number,
                        editable=False,
                        max_length=20,
                        unique=True,
                    ),
                ),
                ("amount", models.DecimalField(decimal_places=2, max_digits=14)),
                ("reason", models.CharField(blank=True, max_length=500)),
                ("created_by", models.CharField(editable=False, max_length=200)),
                (
                    "created_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                (
                    "order",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="refunds",
                        to="orders.order",
                    ),
                ),
                (
                    "rma",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="refund",
                        to="orders.return",
                        verbose_name="return",
                    ),
                ),
            ],
            options={
                "ordering": ["created_at", "id"],
            },
        ),
        migrations.CreateModel(
            name="ReturnLine",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("quantity", models.PositiveIntegerField()),
                ("quantity_restocked", models.PositiveIntegerField(default=0)),
                ("quantity_damaged", models.PositiveIntegerField(default=0)),
                (
                    "item",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="return_lines",
                        to="orders.orderitem",
                    ),
                ),
                (
                    "location",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="return_lines",
                        to="inventory.location",
                    ),
                ),
                (
                    "rma",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="lines",
                        to="orders.return",
                    ),
                ),
            ],
            options={
                "ordering": ["item_id"],
            },
        ),
        migrations.CreateModel(
            name="RefundLine",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("quantity", models.PositiveIntegerField()),
                (
                    "item",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="refund_lines",
                        to="orders.orderitem",
                    ),
                ),
                (
                    "refund",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="lines",
                        to="orders.refund",
                    ),
                ),
            ],
            options={
                "ordering": ["item_id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("quantity__gt", 0)), name="refund_line_qty_gt_0"
                    ),
                    models.UniqueConstraint(
                        fields=("refund", "item"), name="refund_line_unique_item"
                    ),
                ],
            },
        ),
        migrations.AddIndex(
            model_name="return",
            index=models.Index(fields=["order", "created_at"], name="return_order_idx"),
        ),
        migrations.AddIndex(
            model_name="refund",
            index=models.Index(fields=["order", "created_at"], name="refund_order_idx"),
        ),
        migrations.AddConstraint(
            model_name="refund",
            constraint=models.CheckConstraint(
                condition=models.Q(("amount__gt", 0)), name="refund_amount_gt_0"
            ),
        ),
        migrations.AddConstraint(
            model_name="returnline",
            constraint=models.CheckConstraint(
                condition=models.Q(("quantity__gt", 0)), name="return_line_qty_gt_0"
            ),
        ),
        migrations.AddConstraint(
            model_name="returnline",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "quantity__gte",
                        django.db.models.expressions.CombinedExpression(
                            models.F("quantity_restocked"), "+", models.F("quantity_damaged")
                        ),
                    )
                ),
                name="return_line_received_within_quantity",
            ),
        ),
        migrations.AddConstraint(
            model_name="returnline",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("quantity_restocked", 0), ("location__isnull", False), _connector="OR"
                ),
                name="return_line_restock_has_location",
            ),
        ),
        migrations.AddConstraint(
            model_name="returnline",
            constraint=models.UniqueConstraint(
                fields=("rma", "item"), name="return_line_unique_item"
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
