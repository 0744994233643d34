"""The two engines that run the SQL of ``sweeps.sql``: ``local`` (DuckDB over the local data
root) and ``athena`` (Athena over the Glue catalog). Each answers a ``QueryResult``: rows for the
command line, an Arrow table for Python (``QueryResult.table``)."""
