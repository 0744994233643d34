-- View shard_status: one row per shard with an outcome, and its final status. No parameters.
-- The one place the rule is written; every query that needs a shard's final status reads it here.
-- A shard's final status: succeeded once a success outcome exists; else failed when its latest
-- failure (highest attempt among status = 'failed' rows) is final (retryable = false); else
-- pending (a retry will follow). Shards with no outcome at all have no row: coverage.sql lists
-- them. dt is a run's creation date, the same for all its files, so (run_id, dt, shard_id) is
-- one row per shard of a run.
-- attempts: outcome rows; successes: success outcomes (more than one must never happen);
-- points: the shard's point count; last_failure_retryable, last_error_code: of its latest
-- failure (null when it has none).
-- Pruning: run_id and dt are grouping keys, so a filter such as WHERE run_id = '<run>' on the
-- view is pushed below the aggregation to the scan of outcomes (Trino's predicate pushdown
-- moves conjuncts on grouping keys through an aggregation; DuckDB's does too, and a test checks
-- its plan). Athena then reads that run's partitions only, as a filter on outcomes would.
-- Athena: create or replace it with `sweep query --create-views --engine athena`
-- after the tables exist and after any change to this file or to the outcomes table. LocalEngine
-- creates it on DuckDB by itself.
CREATE OR REPLACE VIEW shard_status AS
SELECT
    run_id,
    dt,
    shard_id,
    count(*) AS attempts,
    count_if(status = 'succeeded') AS successes,
    max(point_count) AS points,
    max_by(retryable, attempt) FILTER (WHERE status = 'failed') AS last_failure_retryable,
    max_by(error_code, attempt) FILTER (WHERE status = 'failed') AS last_error_code,
    CASE
        WHEN count_if(status = 'succeeded') > 0 THEN 'succeeded'
        WHEN NOT max_by(retryable, attempt) FILTER (WHERE status = 'failed') THEN 'failed'
        ELSE 'pending'
    END AS final_status
FROM outcomes
GROUP BY run_id, dt, shard_id
