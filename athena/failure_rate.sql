-- Failure rate per run, across all runs: failed shards / shards with an outcome (final states,
-- not attempts). No parameters.
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
    run_id,
    dt,
    count(*) AS shards,
    count_if(final_status = 'succeeded') AS succeeded,
    count_if(final_status = 'failed') AS failed,
    count_if(final_status = 'pending') AS pending,
    CAST(count_if(final_status = 'failed') AS DOUBLE) / count(*) AS failure_rate
FROM final
GROUP BY run_id, dt
ORDER BY run_id
