{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['window_start', 'window_end'],
    )
}}

-- depends_on: {{ source('raw', 'events') }}, {{ source('raw', 'identities') }}, {{ source('raw', 'sessions') }}

-- Every received-time window a run has processed. Its latest end is the pipeline's clock (see
-- int_pipeline_clock); an unwindowed run records (-infinity, end of the latest received hour).

{% if is_windowed() %}

select {{ window_start() }} as window_start, {{ window_end() }} as window_end

{% else %}

with

received as (

    -- straight from the raw tables: deduplication cannot change the latest arrival
    select max(received_at) as received_at from {{ source('raw', 'events') }}
    union all
    select max(received_at) from {{ source('raw', 'identities') }}
    union all
    select max(received_at) from {{ source('raw', 'sessions') }}

)

select
    timestamp '-infinity' as window_start,
    date_trunc('hour', max(received_at)) + interval 1 hour as window_end
from received
having max(received_at) is not null

{% endif %}
