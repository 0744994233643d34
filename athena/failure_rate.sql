-- Failure rate per run, across all runs: failed shards / shards with an outcome (final states,
-- not attempts). No parameters.
-- A shard's final status comes from the view shard_status (view_shard_status.sql states the
-- rule).
SELECT
    run_id,
    dt,
    count(*) AS shards,
    count_if(final_status = 'succeeded') AS succeeded,
    count_if(final_status = 'failed') AS failed,
    count_if(final_status = 'pending') AS pending,
    CAST(count_if(final_status = 'failed') AS DOUBLE) / count(*) AS failure_rate
FROM shard_status
GROUP BY run_id, dt
ORDER BY run_id
