-- Failure rate per day across all runs: failed shards / shards with an outcome, by the runs'
-- creation date (dt). No parameters.
-- A shard's final status comes from the view shard_status (view_shard_status.sql states the
-- rule).
SELECT
    dt,
    count(DISTINCT run_id) AS runs,
    count(*) AS shards,
    count_if(final_status = 'failed') AS failed,
    count_if(final_status = 'pending') AS pending,
    CAST(count_if(final_status = 'failed') AS DOUBLE) / count(*) AS failure_rate
FROM shard_status
GROUP BY dt
ORDER BY dt
