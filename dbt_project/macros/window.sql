{#-
    The run's received-time window: dbt vars `window_start` / `window_end`
    ('YYYY-MM-DD HH:MM:SS', naive UTC, end exclusive). Without both vars a run is unwindowed and
    reads every raw record.
-#}

{% macro window_bounds() -%}
    {%- set start, end = var('window_start', none), var('window_end', none) -%}
    {%- if start is none and end is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if start is none or end is none -%}
        {{ exceptions.raise_compiler_error("pass both window_start and window_end, or neither") }}
    {%- endif -%}
    {%- set parsed = [] -%}
    {%- for value in [start, end] -%}
        {%- set text = value | string | replace('T', ' ') -%}
        {%- do parsed.append(modules.datetime.datetime.strptime(text, '%Y-%m-%d %H:%M:%S')) -%}
    {%- endfor -%}
    {%- if parsed[0] >= parsed[1] -%}
        {{ exceptions.raise_compiler_error("window_start must be before window_end, got " ~ start ~ " and " ~ end) }}
    {%- endif -%}
    {{ return(parsed) }}
{%- endmacro %}

{% macro is_windowed() -%}
    {{ return(window_bounds() is not none) }}
{%- endmacro %}

{% macro window_start() -%}
    {%- set bounds = window_bounds() -%}
    {{- "timestamp '" ~ bounds[0].strftime('%Y-%m-%d %H:%M:%S') ~ "'" if bounds else "timestamp '-infinity'" -}}
{%- endmacro %}

{% macro window_end() -%}
    {%- set bounds = window_bounds() -%}
    {{- "timestamp '" ~ bounds[1].strftime('%Y-%m-%d %H:%M:%S') ~ "'" if bounds else "timestamp 'infinity'" -}}
{%- endmacro %}

{#- A predicate selecting the rows received in the run's window (`true` when unwindowed). Read
    through a staging view, both bounds reach the raw table scan, whose files and row groups
    DuckDB skips by their received times: a window costs its own rows, not its hour's. -#}
{% macro in_window(received_at='received_at', received_hour=none) -%}
    {%- if is_windowed() -%}
        ({{ received_at }} >= {{ window_start() }} and {{ received_at }} < {{ window_end() }}
        {%- if received_hour %}
         and {{ received_hour }} >= date_trunc('hour', {{ window_start() }}) and {{ received_hour }} < {{ window_end() }}
        {%- endif -%})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Bits of the UTC hours of `day` (a DATE) inside [start, end): bit h stands for hour h of that
    day. Windows are whole hours: the start is floored and the end ceiled to the hour. -#}
{% macro hour_mask(day, start, end) -%}
    {%- set first_hour -%}
        greatest(0, least(24, datediff('hour', {{ day }}::timestamp, date_trunc('hour', {{ start }}))))
    {%- endset -%}
    {%- set end_hour -%}
        greatest(0, least(24, datediff('hour', {{ day }}::timestamp,
            date_trunc('hour', {{ end }}) + if({{ end }} > date_trunc('hour', {{ end }}), interval 1 hour, interval 0 hour))))
    {%- endset -%}
    (if({{ end_hour }} > {{ first_hour }}, (1::bigint << {{ end_hour }}) - (1::bigint << {{ first_hour }}), 0::bigint))
{%- endmacro %}

{#- The bit of a timestamp's hour in its day's mask. -#}
{% macro hour_bit(ts) -%}
    (1::bigint << hour({{ ts }}))
{%- endmacro %}

{#- Of a record's copies in the window, the earliest received (then the first landing file). The
    staging views keep every landed copy, so that a window's filter reaches the raw scan: each
    reader of a window keeps one copy of what it reads, and copies in different windows are the
    incremental models' to reconcile (the earliest received wins). -#}
{% macro first_copy_in_window() -%}
    qualify row_number() over (partition by org_id, uuid order by received_at, landing_file) = 1
{%- endmacro %}
