from django.db import models


class MetricSnapshot(models.Model):
    """One number (and its breakdown) for one hour or one day.

    Flows (orders placed, revenue, webhook success rate) cover the whole period; levels
    (stock value, low stock, backlog) are the last reading taken in it. Collecting a
    period again overwrites its row: there is exactly one per name, granularity and start.
    """

    class Granularity(models.TextChoices):
        HOUR = "hour", "Hour"
        DAY = "day", "Day"

    name = models.CharField(max_length=64)
    granularity = models.CharField(max_length=8, choices=Granularity.choices)
    period_start = models.DateTimeField()
    value = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    collected_at = models.DateTimeField()

    class Meta:
        ordering = ["name", "granularity", "period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["name", "granularity", "period_start"], name="metric_snapshot_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.granularity} {self.period_start:%Y-%m-%d %H:%M}: {self.value}"
