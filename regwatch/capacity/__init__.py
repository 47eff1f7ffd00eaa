"""Capacity: where each storage path stands, the actions that answer a forecast crossing,
and the retention recommendation (docs/forecast.md, "Capacity actions").

Called by the service after each storage sample: :func:`forecast_gauges` (the
``regwatch_storage_time_to_threshold_seconds`` gauge) and :func:`evaluate_capacity`.
"""

from regwatch.capacity.actions import (
    DRY_RUN,
    FAILED,
    OK,
    OUTCOMES,
    SKIPPED,
    Trigger,
    harbor_gc_request,
    run_action,
)
from regwatch.capacity.assess import (
    ETA_GUARD,
    GAUGE_THRESHOLDS,
    Assessment,
    alarm_due,
    assess_path,
    assess_store,
    forecast_gauges,
    threshold_label,
    usage_series,
)
from regwatch.capacity.evaluate import (
    ACTION_KIND,
    EPISODE_KIND,
    ActionOutcome,
    evaluate_capacity,
    recorded_outcomes,
)
from regwatch.capacity.retention import (
    Retention,
    StaleRepository,
    StaleTag,
    retention_recommendation,
)

__all__ = [
    "ETA_GUARD",
    "alarm_due",
    "ACTION_KIND",
    "DRY_RUN",
    "EPISODE_KIND",
    "FAILED",
    "GAUGE_THRESHOLDS",
    "OK",
    "OUTCOMES",
    "SKIPPED",
    "ActionOutcome",
    "Assessment",
    "Retention",
    "StaleRepository",
    "StaleTag",
    "Trigger",
    "assess_path",
    "assess_store",
    "evaluate_capacity",
    "forecast_gauges",
    "harbor_gc_request",
    "recorded_outcomes",
    "retention_recommendation",
    "run_action",
    "threshold_label",
    "usage_series",
]
