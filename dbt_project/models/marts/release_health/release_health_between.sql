{{ config(materialized='table_function', parameters=['range_start', 'range_end']) }}

-- release_health over any window: `select * from analytics.release_health_between(
-- timestamp '2026-01-15', timestamp '2026-01-19')` (whole hours; the end is exclusive). It reads
-- only the forever-kept aggregates, so windows older than the session retention answer the same
-- as before pruning.

{{ release_health_sql('range_start', 'range_end') }}
