{{ config(materialized='incremental', incremental_strategy='replace_all', on_schema_change='sync_all_columns') }}
-- Rebuilt whole every run, its rows replaced in place (macros/lake_workarounds/replace_all.sql).

-- Health of every release and environment over its whole history (from the first session up to
-- the pipeline's clock, the end of the latest processed window), or over
-- [release_health_start, release_health_end) when those vars are set. For any other window:
-- `select * from analytics.release_health_between(range_start, range_end)`. Over the whole
-- history the stage follows each environment's last 24 hours of data; over a window, the window.

{% set start = var('release_health_start', none) -%}
{% set end = var('release_health_end', none) -%}
{% set clock -%}
    (select max(window_end) from {{ ref('int_processed_windows') }})
{%- endset %}
{% set first_hour -%}
    (select min(hour) from {{ ref('agg_release_health_hourly') }})
{%- endset %}

{{ release_health_sql(
    "timestamp '" ~ start ~ "'" if start else first_hour,
    "timestamp '" ~ end ~ "'" if end else clock,
    current_from_latest_day=not (start or end),
) }}
