-- Coverage of one run: every shard 0 .. shard_count - 1 that is not exactly covered.
-- Parameters: ${run_id}, ${shard_count} (from the run's manifest or POST /sweeps response).
-- problem: missing (no outcome at all), pending (final status pending in the view shard_status,
-- see view_shard_status.sql: only retryable failures so far), duplicate_success (more than one
-- success outcome: must never happen), unexpected (an outcome for a shard outside the plan).
-- A complete, healthy run returns no rows.
-- Expected shard ids are built as hi * 1000 + lo, so no sequence exceeds Athena's limit of
-- 10,000 elements.
WITH expected AS (
    SELECT hi * 1000 + lo AS shard_id
    FROM UNNEST(sequence(0, CAST(floor((CAST('${shard_count}' AS BIGINT) - 1) / 1000e0) AS BIGINT))) AS h (hi)
    CROSS JOIN UNNEST(sequence(0, 999)) AS l (lo)
    WHERE hi * 1000 + lo < CAST('${shard_count}' AS BIGINT)
),
shards AS (
    SELECT shard_id, attempts, successes, final_status
    FROM shard_status
    WHERE run_id = '${run_id}'
),
checked AS (
    SELECT
        coalesce(e.shard_id, s.shard_id) AS shard_id,
        CASE
            WHEN e.shard_id IS NULL THEN 'unexpected'
            WHEN s.shard_id IS NULL THEN 'missing'
            WHEN s.successes > 1 THEN 'duplicate_success'
            WHEN s.final_status = 'pending' THEN 'pending'
        END AS problem,
        coalesce(s.attempts, 0) AS attempts,
        coalesce(s.successes, 0) AS successes
    FROM expected AS e
    FULL OUTER JOIN shards AS s ON e.shard_id = s.shard_id
)
SELECT shard_id, problem, attempts, successes
FROM checked
WHERE problem IS NOT NULL
ORDER BY shard_id
