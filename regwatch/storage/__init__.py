"""Storage sampling: the history of how full each registry storage path is.

:class:`StorageSampler` measures (statvfs, an incremental tree walk, Harbor's API) and
writes Records of kind ``storage_sample``; :func:`history` reads them back as one
DataFrame per path for the forecaster, the capacity actions, the report and the CLI.
"""

from regwatch.storage.history import history, tree_history
from regwatch.storage.sampler import (
    KIND,
    SampleResult,
    StorageProblem,
    StorageSample,
    StorageSampler,
    statvfs_sample,
)
from regwatch.storage.tree import TreeTotal, TreeWalker

__all__ = [
    "KIND",
    "SampleResult",
    "StorageProblem",
    "StorageSample",
    "StorageSampler",
    "TreeTotal",
    "TreeWalker",
    "history",
    "statvfs_sample",
    "tree_history",
]
