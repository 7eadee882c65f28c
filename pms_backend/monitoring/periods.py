"""Hours and days (UTC) that metric snapshots cover, and the time ranges that ask for them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from pms_backend.errors import InvalidInput
from pms_backend.monitoring.errors import MonitoringErrorCode as Code
from pms_backend.monitoring.models import MetricSnapshot

Granularity = MetricSnapshot.Granularity
STEP = {Granularity.HOUR: timedelta(hours=1), Granularity.DAY: timedelta(days=1)}
MAX_RANGE = timedelta(days=400)


def period_start(moment: datetime, granularity: str) -> datetime:
    """Return the start of the hour or the (UTC) day holding ``moment``."""
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if granularity == Granularity.DAY else moment


def periods(since: datetime, until: datetime, granularity: str) -> Iterator[datetime]:
    """Yield the start of every period that begins before ``until``, from the one holding
    ``since`` on."""
    start = period_start(since, granularity)
    while start < until:
        yield start
        start += STEP[Granularity(granularity)]


def parse_moment(value: str, *, name: str, end_of_day: bool = False) -> datetime:
    """Read an ISO 8601 date or date-time (UTC when it names no offset).

    A date alone means the start of that day, or its end with ``end_of_day``. Raise
    ``InvalidInput`` naming ``name`` and the expected form for anything else.
    """
    text = (value or "").strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            Code.INVALID_TIME_RANGE,
            f"{name}: {value!r} is not an ISO 8601 date or date-time "
            "(e.g. 2025-03-01 or 2025-03-01T14:00:00Z).",
            errors={name: ["Expected an ISO 8601 date or date-time."]},
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_range(since: datetime, until: datetime, *, now: datetime) -> None:
    """Refuse a range that ends before it starts, starts in the future or is too long."""
    problem = None
    if since > now:
        problem = f"since ({since:%Y-%m-%d %H:%M}) is in the future"
    elif since >= until:
        problem = f"since ({since:%Y-%m-%d %H:%M}) must be before until ({until:%Y-%m-%d %H:%M})"
    elif until - since > MAX_RANGE:
        problem = f"the range is longer than {MAX_RANGE.days} days"
    if problem:
        raise InvalidInput(
            Code.INVALID_TIME_RANGE,
            f"Invalid time range: {problem}.",
            errors={"since": [problem]},
        )
