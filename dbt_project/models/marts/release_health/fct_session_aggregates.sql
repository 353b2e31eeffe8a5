{#- Of several copies of a bucket the earliest received is kept. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key=['org_id', 'uuid'],
        merge_update_set_expressions=earliest_copy_wins(
            ['project_id', 'release', 'environment', 'platform', 'started_at', 'distinct_id',
             'exited', 'errored', 'abnormal', 'crashed', 'sessions', 'received_at']
        ),
    )
}}

-- One row per Sentry session aggregate bucket (uuid): the sessions of one release and
-- environment (and did, if any) that started in one minute, by final status. Kept for the
-- session retention (prune_sessions deletes them with the individual sessions); the hourly
-- aggregate and the daily user masks count them and keep everything.

with

window_buckets as (

    select * from {{ ref('int_window_session_aggregates') }}
    qualify row_number() over (partition by org_id, uuid order by received_at) = 1

),

final as (

    select
        uuid,
        org_id,
        project_id,
        release,
        environment,
        platform,
        started_at,
        distinct_id,
        exited,
        errored,
        abnormal,
        crashed,
        (exited + errored + abnormal + crashed)::bigint as sessions,
        received_at

    from window_buckets
    -- retention deleted older buckets; rerunning their received hour must not bring them back
    where started_at >= {{ retention_horizon() }}

)

select * from final
