from django.core.management.base import BaseCommand, CommandError

from pms_backend.errors import InvalidInput
from pms_backend.monitoring.periods import parse_moment
from pms_backend.monitoring.services import metrics_collect
from pms_backend.plurals import counted


class Command(BaseCommand):
    help = (
        "Snapshot the shop's metrics (orders and revenue, orders by status, stock value, "
        "low and out of stock, pending reservations, webhook success rate and backlog, "
        "outbox lag) per hour and per day; the scheduler runs it hourly. Without --since, "
        "yesterday and today are (re)computed. Safe to run again: each period keeps one row."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since",
            metavar="WHEN",
            help="Recompute orders, revenue and webhook success from this ISO 8601 date or "
            "date-time (UTC unless it names an offset), e.g. 2025-03-01.",
        )
        parser.add_argument(
            "--until",
            metavar="WHEN",
            help="… up to this date (inclusive) or date-time (exclusive); default now.",
        )

    def handle(self, *args, since: str | None, until: str | None, **options):
        try:
            start = parse_moment(since, name="--since") if since else None
            end = parse_moment(until, name="--until", end_of_day=True) if until else None
            if end is not None and start is None:
                raise CommandError("--until needs --since.")
            collected = metrics_collect(since=start, until=end)
        except InvalidInput as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(
            f"Wrote {counted(collected.rows, 'metric snapshot')} for "
            f"{collected.since:%Y-%m-%d %H:%M} to {collected.until:%Y-%m-%d %H:%M} UTC."
        )
