{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['org_id', 'session_id'],
    )
}}

-- depends_on: {{ ref('int_window_session_keys') }}
-- depends_on: {{ ref('int_identity_replay') }}

-- One row per session: its first received start and its end merged (each may arrive in a
-- different window, in either order). Of several ends, a final one outranks a provisional one (a
-- Sentry update with status ok, of a session still in progress); of final ends the earliest
-- received wins, of provisional ones the latest update. A run rewrites the sessions its window's
-- records touch, the still-active ones whose deadline the clock has passed, and the ones whose
-- distinct_id was re-stitched. Sessions older than the retention horizon (the latest prune's
-- cutoff) are never written again: rerunning an old received hour must not bring back what
-- retention deleted.

{%- set window_end_outranks_previous %}
    case
        when (coalesce(window_ends.reported_status, '') = 'ok') <> (coalesce(previous.reported_status, '') = 'ok')
            then coalesce(previous.reported_status, '') = 'ok'
        when window_ends.reported_status = 'ok' and window_ends.ended_at <> previous.ended_at
            then window_ends.ended_at > previous.ended_at
        else window_ends.received_at < previous.end_received_at
    end
{%- endset %}

with

clock as (

    select * from {{ ref('int_pipeline_clock') }}

),

window_records as (

    select * from {{ ref('int_window_session_records') }}

),

window_starts as (

    select * from window_records
    where kind = 'start'
    qualify row_number() over (partition by org_id, session_id order by received_at, uuid) = 1

),

window_ends as (

    select * from window_records
    where kind = 'end'
    qualify row_number() over (
        partition by org_id, session_id
        order by
            coalesce(reported_status, '') = 'ok',
            if(reported_status = 'ok', ended_at, null) desc nulls last,
            received_at,
            uuid
    ) = 1

),

previous as (

    {% if is_incremental() %}
    select previous.*
    from {{ this }} as previous
    where exists (
            select 1 from {{ ref('int_window_session_keys') }} as touched
            where touched.org_id = previous.org_id and touched.session_id = previous.session_id
        )
        or (previous.status = 'active' and previous.started_at
            + to_hours((select abnormal_timeout_hours from clock)) <= (select as_of from clock))
        or exists (
            select 1 from {{ ref('int_identity_replay') }} as restitched
            where restitched.org_id = previous.org_id and restitched.distinct_id = previous.distinct_id
        )
    {% else %}
    select * from (
        select
            null::varchar as org_id, null::varchar as session_id, null::bigint as project_id,
            null::varchar as distinct_id, null::varchar as release, null::varchar as environment,
            null::varchar as platform, null::timestamp as started_at, null::double as sample_rate,
            null::timestamp as start_received_at, null::varchar as reported_status,
            null::integer as error_count, null::integer as crash_count, null::timestamp as ended_at,
            null::bigint as reported_duration_ms, null::timestamp as end_received_at
    ) where false
    {% endif %}

),

session_keys as (

    select org_id, session_id from window_starts
    union
    select org_id, session_id from window_ends
    union
    select org_id, session_id from previous

),

merged as (

    -- for the start and for the end separately, the earliest received record wins
    select
        session_keys.org_id,
        session_keys.session_id,
        (window_starts.received_at is not null
            and (previous.start_received_at is null or window_starts.received_at < previous.start_received_at)
        ) as takes_window_start,
        (window_ends.received_at is not null
            and (previous.end_received_at is null or {{ window_end_outranks_previous }})
        ) as takes_window_end,
        window_starts,
        window_ends,
        previous

    from session_keys
    left join window_starts using (org_id, session_id)
    left join window_ends using (org_id, session_id)
    left join previous using (org_id, session_id)

),

combined as (

    select
        org_id,
        session_id,
        coalesce(
            if(takes_window_start, window_starts.project_id, previous.project_id),
            previous.project_id, window_ends.project_id
        ) as project_id,
        if(takes_window_start, window_starts.distinct_id, previous.distinct_id) as distinct_id,
        if(takes_window_start, window_starts.release, previous.release) as release,
        if(takes_window_start, window_starts.environment, previous.environment) as environment,
        if(takes_window_start, window_starts.platform, previous.platform) as platform,
        if(takes_window_start, window_starts.started_at, previous.started_at) as started_at,
        if(takes_window_start, window_starts.sample_rate, previous.sample_rate) as sample_rate,
        if(takes_window_start, window_starts.received_at, previous.start_received_at) as start_received_at,
        if(takes_window_end, window_ends.reported_status, previous.reported_status) as reported_status,
        if(takes_window_end, window_ends.error_count, previous.error_count) as error_count,
        if(takes_window_end, window_ends.crash_count, previous.crash_count) as crash_count,
        if(takes_window_end, window_ends.ended_at, previous.ended_at) as ended_at,
        if(takes_window_end, window_ends.reported_duration_ms, previous.reported_duration_ms) as reported_duration_ms,
        if(takes_window_end, window_ends.received_at, previous.end_received_at) as end_received_at

    from merged

),

with_status as (

    select
        -- Relay's rule: an end timed before its start (a client clock that moved, or a native
        -- end sent apart from its start) ends at the start, so no duration is negative
        combined.* replace (
            if(combined.ended_at < combined.started_at, combined.started_at, combined.ended_at) as ended_at
        ),
        combined.started_at + to_hours(clock.abnormal_timeout_hours) as end_deadline_at,
        case
            when coalesce(combined.crash_count, 0) > 0 or combined.reported_status = 'crashed'
                then 'crashed'
            when combined.reported_status = 'abnormal'
                then 'abnormal'
            -- an end counts whenever it arrives: a late one replaces the timeout's abnormal
            when combined.end_received_at is not null
                and (coalesce(combined.error_count, 0) > 0 or combined.reported_status = 'errored')
                then 'errored'
            when combined.end_received_at is not null
                then 'exited'
            when combined.started_at + to_hours(clock.abnormal_timeout_hours) <= clock.as_of
                then 'abnormal'
            else 'active'
        end as status

    from combined
    cross join clock

),

identities as (

    select org_id, distinct_id, person_id from {{ ref('int_identity_map') }}

),

final as (

    select
        with_status.session_id,
        with_status.org_id,
        with_status.project_id,
        with_status.distinct_id,
        coalesce(identities.person_id, {{ person_uuid('with_status.org_id', 'with_status.distinct_id') }}) as person_id,
        with_status.status,
        with_status.status = 'crashed' as is_crashed,
        with_status.release,
        coalesce(with_status.environment, 'production') as environment,
        with_status.platform,
        with_status.started_at,
        with_status.ended_at,
        coalesce(
            with_status.reported_duration_ms,
            datediff('millisecond', with_status.started_at, with_status.ended_at)
        ) as duration_ms,
        coalesce(with_status.error_count, 0) as error_count,
        coalesce(with_status.crash_count, 0) as crash_count,
        coalesce(with_status.sample_rate, 1.0) < 1.0 as sampled,
        coalesce(with_status.sample_rate, 1.0) as sample_rate,
        -- crashed sessions are always stored; any other stored session stands for 1 / rate
        if(with_status.status = 'crashed', 1.0, 1.0 / coalesce(with_status.sample_rate, 1.0)) as sample_weight,
        with_status.end_deadline_at,
        with_status.reported_status,
        with_status.reported_duration_ms,
        with_status.start_received_at,
        with_status.end_received_at

    from with_status
    left join identities
        on identities.org_id = with_status.org_id and identities.distinct_id = with_status.distinct_id
    -- the same rule prune_sessions deletes by
    where coalesce(with_status.started_at, with_status.end_received_at) >= {{ retention_horizon() }}

)

select * from final
