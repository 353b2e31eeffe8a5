{#- on-run-start: the pipeline's own bookkeeping tables, which no model builds and so must exist
    before any model reads them (they are declared as the `ops` source). -#}
{% macro create_ops_tables() -%}
    create schema if not exists {{ target.database }}.ops;
    create table if not exists {{ target.database }}.ops.session_prunes (
        pruned_at timestamp not null,
        cutoff timestamp not null,
        sessions_deleted bigint not null
    );
{%- endmacro %}

{#- Hours (and days) that start before this were pruned from fct_sessions: their session counts in
    the aggregates are frozen, since recomputing them from the surviving sessions would lose the
    pruned ones. -#}
{% macro retention_horizon() -%}
    (select coalesce(max(cutoff), timestamp '-infinity') from {{ source('ops', 'session_prunes') }})
{%- endmacro %}
