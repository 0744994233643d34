-- Run summary: shards, points and attempts by final status, with the attempts' durations.
-- Parameters: ${run_id}.
-- A shard's final status comes from the view shard_status (view_shard_status.sql states the
-- rule). Shards with no outcome at all are not in it: coverage.sql lists them.
-- Durations are over every attempt (outcome row) of the shards in that status.
WITH final AS (
    SELECT shard_id, attempts, points, final_status
    FROM shard_status
    WHERE run_id = '${run_id}'
),
attempts AS (
    SELECT shard_id, duration_ms
    FROM outcomes
    WHERE run_id = '${run_id}'
),
by_status AS (
    SELECT
        final_status,
        count(*) AS shards,
        sum(points) AS points,
        sum(attempts) AS attempts,
        max(attempts) AS max_attempts
    FROM final
    GROUP BY final_status
),
durations AS (
    SELECT
        f.final_status,
        min(a.duration_ms) AS min_duration_ms,
        avg(a.duration_ms) AS avg_duration_ms,
        approx_percentile(a.duration_ms, 0.95) AS p95_duration_ms,
        max(a.duration_ms) AS max_duration_ms
    FROM attempts AS a
    JOIN final AS f ON a.shard_id = f.shard_id
    GROUP BY f.final_status
)
SELECT
    b.final_status AS status,
    b.shards,
    b.points,
    b.attempts,
    b.max_attempts,
    d.min_duration_ms,
    d.avg_duration_ms,
    d.p95_duration_ms,
    d.max_duration_ms
FROM by_status AS b
JOIN durations AS d ON b.final_status = d.final_status
ORDER BY b.final_status
