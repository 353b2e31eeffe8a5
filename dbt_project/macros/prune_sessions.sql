{#-
    Retention of individual sessions (30 days by default), as a run-operation:

        dbt run-operation prune_sessions --args '{days: 30}'
        dbt run-operation prune_sessions --args '{days: 30, as_of: "2026-02-18 00:00:00"}'

    Deletes the rows of analytics.fct_sessions (and the Sentry aggregate buckets of
    analytics.fct_session_aggregates) that started before cutoff = (UTC day of as_of) - days,
    as_of defaulting to the pipeline clock (the end of the latest processed window), and logs the
    cutoff in ops.session_prunes. Nothing else is touched:
    agg_release_health_hourly, agg_release_users_daily and release_health_trend keep every hour,
    and from then on the models treat hours before the latest cutoff as frozen.
-#}
{% macro prune_sessions(days=none, as_of=none) -%}
    {%- set days = (days if days is not none else env_var('LOOM_SESSION_RETENTION_DAYS', '30')) | int -%}
    {%- if days < 0 -%}
        {{ exceptions.raise_compiler_error("days must be >= 0, got " ~ days) }}
    {%- endif -%}
    {%- set reference -%}
        {%- if as_of -%}
            timestamp '{{ as_of }}'
        {%- else -%}
            (select max(window_end) from {{ ref('int_processed_windows') }})
        {%- endif -%}
    {%- endset -%}
    {%- set cutoff = run_query(
        "select strftime(date_trunc('day', " ~ reference ~ ") - to_days(" ~ days ~ "), '%Y-%m-%d %H:%M:%S')"
    ).columns[0].values()[0] -%}
    {%- if cutoff is none -%}
        {{ log("prune_sessions: nothing processed yet, nothing to prune", info=True) }}
        {{ return(none) }}
    {%- endif -%}
    {%- do run_query(create_ops_tables()) -%}
    {%- set deleted = run_query(
        "delete from " ~ ref('fct_sessions') ~ " where coalesce(started_at, end_received_at) < timestamp '" ~ cutoff ~ "'"
    ).columns[0].values()[0] -%}
    {#- a lake whose first run since the aggregates came has not happened yet has none -#}
    {%- set buckets = load_relation(ref('fct_session_aggregates')) -%}
    {%- if buckets is not none -%}
        {%- do run_query("delete from " ~ buckets ~ " where started_at < timestamp '" ~ cutoff ~ "'") -%}
    {%- endif -%}
    {%- do run_query(
        "insert into " ~ source('ops', 'session_prunes') ~ " values (now()::timestamp, timestamp '" ~ cutoff ~ "', " ~ deleted ~ ")"
    ) -%}
    {%- do adapter.commit() -%}
    {{ log("prune_sessions: deleted " ~ deleted ~ " sessions that started before " ~ cutoff, info=True) }}
{%- endmacro %}
