{#-
    Release-health building blocks shared by agg_release_health_hourly, release_health,
    release_health_between and release_health_trend. Definitions: models/marts/_release_health.yml.
-#}

{#- What one distinct user stands for once sampling is undone: a user with a crashed session in the
    window was certainly observed (crashed sessions are always stored) and counts 1; any other
    stored user counts 1 / r, r being the highest sample rate among their stored sessions in the
    window — the same extrapolation as for their sessions. -#}
{% macro user_weight(has_crashed, highest_sample_rate) -%}
    if({{ has_crashed }}, 1.0, 1.0 / {{ highest_sample_rate }})
{%- endmacro %}

{#- 100 × part / whole, null when there is nothing to divide by. -#}
{% macro percentage(part, whole) -%}
    if(coalesce({{ whole }}, 0) = 0, null, 100.0 * ({{ part }}) / ({{ whole }}))
{%- endmacro %}

{% macro adoption_stage(adoption_rate, peak_adoption_rate) -%}
    case
        when {{ adoption_rate }} >= 50 then 'adopted'
        when {{ adoption_rate }} >= 5 then 'growing'
        when coalesce({{ peak_adoption_rate }}, 0) >= 5 then 'replaced'
        else 'new'
    end
{%- endmacro %}

{#- Per (org, project, release, environment, person): the persons who started a session in
    [start, end) (whole hours), whether one of their sessions there crashed, and their highest
    sample rate there, read from agg_release_users_daily's hour masks. -#}
{% macro window_persons(start, end, users_relation) -%}
    select
        users.org_id,
        users.project_id,
        users.release,
        users.environment,
        users.person_id,
        bool_or(users.crashed_hours & {{ hour_mask('users.day', start, end) }} <> 0) as has_crashed,
        max(users.sample_rate) as highest_sample_rate

    from {{ users_relation }} as users
    where users.day >= ({{ start }})::date
      and users.day <= ({{ end }})::date
      and users.session_hours & {{ hour_mask('users.day', start, end) }} <> 0
    group by all
{%- endmacro %}

{#- Health of every release and environment with sessions in [start, end): `start` and `end` are
    SQL expressions (literals, parameters or subqueries). -#}
{% macro release_health_sql(start, end) -%}
with

bounds as (

    select
        date_trunc('hour', ({{ start }})::timestamp) as window_start,
        date_trunc('hour', ({{ end }})::timestamp)
            + if(({{ end }})::timestamp > date_trunc('hour', ({{ end }})::timestamp), interval 1 hour, interval 0 hour)
            as window_end

),

hourly as (

    select hourly.*
    from {{ ref('agg_release_health_hourly') }} as hourly
    cross join bounds
    where hourly.hour < bounds.window_end

),

current_sessions as (

    select
        org_id,
        project_id,
        release,
        environment,
        sum(stored_sessions)::bigint as stored_sessions,
        sum(adjusted_sessions) as adjusted_sessions,
        sum(crashed_sessions)::bigint as crashed_sessions,
        sum(errored_sessions) as errored_sessions

    from hourly
    cross join bounds
    where hourly.hour >= bounds.window_start
    group by all

),

previous_sessions as (

    -- the window of the same length just before, for crash_free_rate_trend
    select
        org_id,
        project_id,
        release,
        environment,
        sum(adjusted_sessions) as adjusted_sessions,
        sum(crashed_sessions)::bigint as crashed_sessions

    from hourly
    cross join bounds
    where hourly.hour >= bounds.window_start - (bounds.window_end - bounds.window_start)
      and hourly.hour < bounds.window_start
    group by all

),

environment_sessions as (

    select org_id, project_id, environment, sum(adjusted_sessions) as adjusted_sessions
    from current_sessions
    group by all

),

lifetime as (

    -- first and last session of the release, up to the window's end
    select
        org_id,
        project_id,
        release,
        environment,
        min(first_started_at) as first_seen,
        max(last_started_at) as last_seen

    from hourly
    group by all

),

daily_adoption as (

    select
        org_id,
        project_id,
        release,
        environment,
        hour::date as day,
        sum(adjusted_sessions) as adjusted_sessions

    from hourly
    cross join bounds
    where hourly.hour < bounds.window_start
    group by all

),

peak_adoption as (

    -- the release's highest share of its environment on any UTC day before the window
    select
        releases.org_id,
        releases.project_id,
        releases.release,
        releases.environment,
        max({{ percentage('releases.adjusted_sessions', 'environments.adjusted_sessions') }}) as peak_adoption_rate

    from daily_adoption as releases
    inner join (
        select org_id, project_id, environment, day, sum(adjusted_sessions) as adjusted_sessions
        from daily_adoption
        group by all
    ) as environments using (org_id, project_id, environment, day)
    group by all

),

persons as (

    {{ window_persons('(select window_start from bounds)', '(select window_end from bounds)', ref('agg_release_users_daily')) }}

),

users as (

    select
        org_id,
        project_id,
        release,
        environment,
        sum({{ user_weight('has_crashed', 'highest_sample_rate') }}) as adjusted_users,
        count(*) filter (where has_crashed) as crashed_users

    from persons
    group by all

),

rates as (

    select
        current_sessions.org_id,
        current_sessions.project_id,
        current_sessions.release,
        current_sessions.environment,
        current_sessions.stored_sessions,
        current_sessions.adjusted_sessions,
        current_sessions.crashed_sessions,
        current_sessions.errored_sessions,
        coalesce(users.adjusted_users, 0) as adjusted_users,
        coalesce(users.crashed_users, 0) as crashed_users,
        {{ percentage('current_sessions.adjusted_sessions - current_sessions.crashed_sessions', 'current_sessions.adjusted_sessions') }}
            as crash_free_session_rate,
        {{ percentage('users.adjusted_users - users.crashed_users', 'users.adjusted_users') }}
            as crash_free_user_rate,
        {{ percentage('current_sessions.errored_sessions', 'current_sessions.adjusted_sessions') }}
            as error_rate,
        {{ percentage('current_sessions.adjusted_sessions', 'environment_sessions.adjusted_sessions') }}
            as adoption_rate,
        {{ percentage('previous_sessions.adjusted_sessions - previous_sessions.crashed_sessions', 'previous_sessions.adjusted_sessions') }}
            as previous_crash_free_session_rate,
        peak_adoption.peak_adoption_rate,
        lifetime.first_seen,
        lifetime.last_seen

    from current_sessions
    inner join environment_sessions using (org_id, project_id, environment)
    inner join lifetime using (org_id, project_id, release, environment)
    left join peak_adoption using (org_id, project_id, release, environment)
    left join previous_sessions using (org_id, project_id, release, environment)
    left join users using (org_id, project_id, release, environment)

),

final as (

    select
        rates.org_id,
        rates.project_id,
        rates.release,
        rates.environment,
        bounds.window_start,
        bounds.window_end,
        round(rates.adjusted_sessions)::bigint as total_sessions,
        rates.crashed_sessions,
        round(rates.adjusted_users)::bigint as total_users,
        rates.crashed_users,
        round(rates.crash_free_session_rate, 2) as crash_free_session_rate,
        round(rates.crash_free_user_rate, 2) as crash_free_user_rate,
        round(rates.error_rate, 2) as error_rate,
        round(rates.adoption_rate, 2) as adoption_rate,
        {{ adoption_stage('rates.adoption_rate', 'rates.peak_adoption_rate') }} as adoption_stage,
        rates.first_seen,
        rates.last_seen,
        round(rates.crash_free_session_rate - rates.previous_crash_free_session_rate, 2)
            as crash_free_rate_trend,
        rates.stored_sessions,
        rates.adjusted_sessions,
        rates.adjusted_users,
        rates.errored_sessions

    from rates
    cross join bounds

)

select * from final
{%- endmacro %}
