{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['window_start', 'window_end'],
    )
}}

-- Every received-time window a run has processed. Its latest end is the pipeline's clock (see
-- int_pipeline_clock); an unwindowed run records (-infinity, end of the latest received hour).

{% if is_windowed() %}

select {{ window_start() }} as window_start, {{ window_end() }} as window_end

{% else %}

with

received as (

    select max(received_at) as received_at from {{ ref('stg_events') }}
    union all
    select max(received_at) from {{ ref('stg_identities') }}
    union all
    select max(received_at) from {{ ref('stg_sessions') }}

)

select
    timestamp '-infinity' as window_start,
    date_trunc('hour', max(received_at)) + interval 1 hour as window_end
from received
having max(received_at) is not null

{% endif %}
