-- Failures of one run per error code. Parameters: ${run_id}.
-- failed_attempts: failure outcomes with that code (retryable ones included);
-- shards_affected: shards with at least one such attempt;
-- failed_shards: shards whose final status is failed with that code as their latest failure
-- (final status and latest failure from the view shard_status, see view_shard_status.sql);
-- failure_rate: failed_shards / shards of the run with an outcome.
WITH shards AS (
    SELECT shard_id, final_status, last_error_code
    FROM shard_status
    WHERE run_id = '${run_id}'
),
final_failures AS (
    SELECT last_error_code AS error_code, count(*) AS failed_shards
    FROM shards
    WHERE final_status = 'failed'
    GROUP BY last_error_code
),
by_code AS (
    SELECT
        error_code,
        count(*) AS failed_attempts,
        count(DISTINCT shard_id) AS shards_affected
    FROM outcomes
    WHERE run_id = '${run_id}' AND status = 'failed'
    GROUP BY error_code
),
total AS (
    SELECT count(*) AS shards FROM shards
)
SELECT
    c.error_code,
    c.failed_attempts,
    c.shards_affected,
    coalesce(f.failed_shards, 0) AS failed_shards,
    CAST(coalesce(f.failed_shards, 0) AS DOUBLE) / t.shards AS failure_rate
FROM by_code AS c
LEFT JOIN final_failures AS f ON c.error_code = f.error_code
CROSS JOIN total AS t
ORDER BY failed_shards DESC, c.error_code
