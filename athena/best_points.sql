-- The best point of one run for each parameter value: the lowest value of a metric.
-- Parameters: ${run_id}, ${metric} (e.g. abs_error).
-- One row per (parameter, value): the point with the lowest metric among the run's points with
-- that parameter value (ties: lowest point_index), and how many points had it.
WITH points AS (
    SELECT point_index, params, element_at(metrics, '${metric}') AS metric_value
    FROM results
    WHERE run_id = '${run_id}' AND element_at(metrics, '${metric}') IS NOT NULL
),
by_value AS (
    SELECT
        k.parameter,
        element_at(p.params, k.parameter) AS parameter_value,
        p.point_index,
        p.metric_value
    FROM points AS p
    CROSS JOIN UNNEST(map_keys(p.params)) AS k (parameter)
),
ranked AS (
    SELECT
        parameter,
        parameter_value,
        point_index,
        metric_value,
        count(*) OVER (PARTITION BY parameter, parameter_value) AS point_count,
        row_number() OVER (
            PARTITION BY parameter, parameter_value ORDER BY metric_value, point_index
        ) AS rn
    FROM by_value
)
SELECT parameter, parameter_value, point_index, metric_value, point_count
FROM ranked
WHERE rn = 1
ORDER BY parameter, try_cast(parameter_value AS DOUBLE), parameter_value
