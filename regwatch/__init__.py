"""regwatch: observability and audit analytics for container registries."""

from regwatch.audit import deletes
from regwatch.clock import Clock, FixedClock, SystemClock
from regwatch.config import Config, load_config
from regwatch.errors import RegwatchError
from regwatch.events import Action, AuthClass, DropReason, Dropped, Event, Outcome, RawLine, Tally
from regwatch.pipeline import IngestOptions, ingest
from regwatch.stores.base import Aggregation, Query, Store
from regwatch.summary import summarize

__all__ = [
    "Action",
    "Aggregation",
    "AuthClass",
    "Clock",
    "Config",
    "DropReason",
    "Dropped",
    "Event",
    "FixedClock",
    "IngestOptions",
    "Outcome",
    "Query",
    "RawLine",
    "RegwatchError",
    "Store",
    "SystemClock",
    "Tally",
    "deletes",
    "ingest",
    "load_config",
    "summarize",
]
__version__ = "0.1.0"
