-- Failure rate per day across all runs: failed shards / shards with an outcome, by the runs'
-- creation date (dt). No parameters.
-- A shard's final status: succeeded once a success outcome exists; else failed when its latest
-- failure is final (retryable = false); else pending.
WITH shards AS (
    SELECT
        run_id,
        dt,
        shard_id,
        count_if(status = 'succeeded') AS successes,
        max_by(retryable, attempt) FILTER (WHERE status = 'failed') AS last_failure_retryable
    FROM outcomes
    GROUP BY run_id, dt, shard_id
),
final AS (
    SELECT
        run_id,
        dt,
        CASE
            WHEN successes > 0 THEN 'succeeded'
            WHEN NOT last_failure_retryable THEN 'failed'
            ELSE 'pending'
        END AS final_status
    FROM shards
)
SELECT
    dt,
    count(DISTINCT run_id) AS runs,
    count(*) AS shards,
    count_if(final_status = 'failed') AS failed,
    count_if(final_status = 'pending') AS pending,
    CAST(count_if(final_status = 'failed') AS DOUBLE) / count(*) AS failure_rate
FROM final
GROUP BY dt
ORDER BY dt
