"""Storage forecasting for registry disks (docs/forecast.md).

Public API: :func:`forecast`, :func:`time_to_threshold`, :class:`Forecaster` (scikit-learn
style: ``fit(series) -> self``, ``predict(horizon) -> Forecast``) and :class:`Forecast`.
Statuses: ``"ok"``, ``"not enough data"``, ``"unpredictable"``. Needs scikit-learn (the
``forecast`` extra).
"""

from regwatch.forecast.model import (
    NOT_ENOUGH_DATA,
    OK,
    STATUSES,
    UNPREDICTABLE,
    Forecast,
    Forecaster,
    forecast,
    time_to_threshold,
)

__all__ = [
    "NOT_ENOUGH_DATA",
    "OK",
    "STATUSES",
    "UNPREDICTABLE",
    "Forecast",
    "Forecaster",
    "forecast",
    "time_to_threshold",
]
