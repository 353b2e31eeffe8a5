{% macro first_copy_in_received_hour() %}
    {#- Copies of one record (a retried request, a resent envelope) received in the same hour count
        once: the earliest received, then the first landing file. Copies across hours are left to
        the incremental models, which keep the earliest received copy. Partitioning by the hour
        lets DuckDB push a window's `received_hour` filter through to the raw scan. -#}
    qualify row_number() over (
        partition by org_id, uuid, received_hour
        order by received_at, landing_file
    ) = 1
{%- endmacro %}
