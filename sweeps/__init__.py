"""sweeps: submit parameter sweeps to a stage, follow them, and read their results.

``from sweeps import Client`` is the Python API (``sweeps.client``); ``sweep`` is the command
built on it (``sweeps.cli``). Importing this package loads neither pyarrow nor DuckDB: only a
query does.
"""

from sweeps.client import Client, Run, RunRecord, RunsPage, Status
from sweeps.errors import ApiError, OutputError, QueryError, SweepsError, WaitTimeout

__all__ = [
    "ApiError",
    "Client",
    "OutputError",
    "QueryError",
    "Run",
    "RunRecord",
    "RunsPage",
    "Status",
    "SweepsError",
    "WaitTimeout",
]
