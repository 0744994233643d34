-- Failures of one run per error code. Parameters: ${run_id}.
-- failed_attempts: failure outcomes with that code (retryable ones included);
-- shards_affected: shards with at least one such attempt;
-- failed_shards: shards whose final status is failed with that code as their latest failure;
-- failure_rate: failed_shards / shards of the run with an outcome.
WITH attempts AS (
    SELECT shard_id, attempt, status, error_code, retryable
    FROM outcomes
    WHERE run_id = '${run_id}'
),
shards AS (
    SELECT
        shard_id,
        count_if(status = 'succeeded') AS successes,
        max_by(retryable, attempt) FILTER (WHERE status = 'failed') AS last_failure_retryable,
        max_by(error_code, attempt) FILTER (WHERE status = 'failed') AS last_error_code
    FROM attempts
    GROUP BY shard_id
),
final_failures AS (
    SELECT last_error_code AS error_code, count(*) AS failed_shards
    FROM shards
    WHERE successes = 0 AND NOT last_failure_retryable
    GROUP BY last_error_code
),
by_code AS (
    SELECT
        error_code,
        count(*) AS failed_attempts,
        count(DISTINCT shard_id) AS shards_affected
    FROM attempts
    WHERE status = 'failed'
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
