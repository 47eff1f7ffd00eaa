"""Stores: where events live. Builtins and plugins register under ``regwatch.stores``."""

from regwatch.stores.base import Aggregation, Health, Query, Record, Store, WriteResult

__all__ = ["Aggregation", "Health", "Query", "Record", "Store", "WriteResult"]
