"""Event time of the synthetic feed: day indexes, seconds of day, +08:00 timestamps."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8))


class Clock:
    """Days ``0 .. n_days-1`` cover ``months`` calendar months from ``start`` ("YYYY-MM").

    Negative days (inpatient warm-up) and days past the end (never emitted) are allowed.
    """

    def __init__(self, start: str, months: int) -> None:
        if months < 1:
            raise ValueError("months must be >= 1")
        year, month = (int(x) for x in start.split("-"))
        self.start = date(year, month, 1)
        labels = []
        for k in range(months):
            y, m = divmod(month - 1 + k, 12)
            labels.append(f"{year + y:04d}-{m + 1:02d}")
        y, m = divmod(month - 1 + months, 12)
        self.end = date(year + y, m + 1, 1)
        self.months: tuple[str, ...] = tuple(labels)
        self.n_days = (self.end - self.start).days
        self.base_ms = int(datetime(year, month, 1, tzinfo=CST).timestamp() * 1000)
        self._iso_date: dict[int, str] = {}
        self.month_of_day = [self.months.index(self.day_date(d).strftime("%Y-%m"))
                             for d in range(self.n_days)]

    def day_date(self, day: int) -> date:
        return self.start + timedelta(days=day)

    def weekday(self, day: int) -> int:
        return self.day_date(day).weekday()

    def iso(self, day: int, sec: int) -> str:
        d = self._iso_date.get(day)
        if d is None:
            d = self._iso_date[day] = self.day_date(day).isoformat()
        h, rest = divmod(sec, 3600)
        return f"{d}T{h:02d}:{rest // 60:02d}:{rest % 60:02d}+08:00"

    def ms(self, day: int, sec: int) -> int:
        return self.base_ms + (day * 86400 + sec) * 1000

    def first_day_of_month(self, k: int) -> int:
        return self.month_of_day.index(k)
