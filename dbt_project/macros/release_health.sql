{#-
    Release-health building blocks shared by agg_release_health_hourly, release_health,
    release_health_between and release_health_trend. Definitions:
    models/marts/release_health/release_health.yml.
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

{#- A trend bucket's counts and rates, from its `sessions` (stored, adjusted and crashed sessions)
    and its `users` (adjusted and crashed users; none when the bucket has none). -#}
{% macro trend_bucket_columns(sessions, users) -%}
    round({{ sessions }}.adjusted_sessions)::bigint as total_sessions,
        {{ sessions }}.crashed_sessions,
        round(coalesce({{ users }}.adjusted_users, 0))::bigint as total_users,
        coalesce({{ users }}.crashed_users, 0) as crashed_users,
        round({{ percentage(sessions ~ '.adjusted_sessions - ' ~ sessions ~ '.crashed_sessions', sessions ~ '.adjusted_sessions') }}, 2)
            as crash_free_session_rate,
        round({{ percentage(users ~ '.adjusted_users - ' ~ users ~ '.crashed_users', users ~ '.adjusted_users') }}, 2)
            as crash_free_user_rate,
        {{ sessions }}.stored_sessions,
        {{ sessions }}.adjusted_sessions,
        coalesce({{ users }}.adjusted_users, 0) as adjusted_users
{%- endmacro %}

{#- The stage follows current adoption against the release's own past: `replaced` once it fell
    under 5 % after an earlier peak of at least 5 %. Thresholds: release_health.yml. -#}
{% macro adoption_stage(current_adoption_rate, peak_adoption_rate) -%}
    case
        when {{ current_adoption_rate }} >= 50 then 'adopted'
        when {{ current_adoption_rate }} >= 5 then 'growing'
        when coalesce({{ peak_adoption_rate }}, 0) >= 5 then 'replaced'
        else 'new'
    end
{%- endmacro %}

{#- A predicate narrowing `relation`'s rows to one org and project when they are given (SQL
    expressions), for callers that ask about one tenant: the aggregates are then read for it
    alone. `true` when both are none. -#}
{% macro scope_predicate(relation, org_id=none, project_id=none) -%}
    {%- set clauses = [] -%}
    {%- if org_id is not none %}{% do clauses.append(relation ~ '.org_id = ' ~ org_id) %}{% endif -%}
    {%- if project_id is not none %}{% do clauses.append(relation ~ '.project_id = ' ~ project_id) %}{% endif -%}
    {{ clauses | join(' and ') if clauses else 'true' }}
{%- endmacro %}

{#- Per (org, project, release, environment, person): the persons who started a session in
    [start, end) (whole hours), whether one of their sessions there crashed, and their highest
    sample rate there, read from agg_release_users_daily's hour masks. -#}
{% macro window_persons(start, end, users_relation, org_id=none, project_id=none) -%}
    select
        org_id,
        project_id,
        release,
        environment,
        person_id,
        bool_or(crashed_hours & window_hours <> 0) as has_crashed,
        max(sample_rate) as highest_sample_rate

    from (
        select users.*, {{ hour_mask('users.day', start, end) }} as window_hours
        from {{ users_relation }} as users
        where users.day >= ({{ start }})::date
          and users.day <= ({{ end }})::date
          and {{ scope_predicate('users', org_id, project_id) }}
    )
    where session_hours & window_hours <> 0
    group by all
{%- endmacro %}

{#- Health of every release and environment with sessions in [start, end): `start` and `end` are
    SQL expressions (literals, parameters or subqueries); `org_id`/`project_id`, when given, narrow
    it to one tenant. Current adoption (what the stage follows) is measured over the window, or,
    with `current_from_latest_day`, over each environment's last 24 hours of data in it: the hour
    of its latest session and the 23 before (as Sentry does for a release list without a period).
    Written as one pass over the hourly rows plus two small aggregates, joined once: planning a
    seven-way join cost more than running it. -#}
{% macro release_health_sql(start, end, org_id=none, project_id=none, current_from_latest_day=false) -%}
{%- set window_start -%}
    date_trunc('hour', ({{ start }})::timestamp)
{%- endset -%}
{%- set window_end -%}
    (date_trunc('hour', ({{ end }})::timestamp)
        + if(({{ end }})::timestamp > date_trunc('hour', ({{ end }})::timestamp), interval 1 hour, interval 0 hour))
{%- endset -%}
{%- set in_window -%}
    hour >= {{ window_start }}
{%- endset -%}
{#- crash_free_rate_trend compares the period the stage looks at with the one of the same length
    just before it: over a window, the window and the window before; without one, the
    environment's last 24 h of data and the 24 h before them. -#}
{%- if current_from_latest_day -%}
{%- set in_trend_period -%}
    {{ in_window }} and hour >= current_start
{%- endset -%}
{%- set in_previous_period -%}
    hour >= current_start - interval 24 hour and hour < current_start
{%- endset -%}
{%- else -%}
{%- set in_trend_period = in_window -%}
{%- set in_previous_period -%}
    hour >= {{ window_start }} - ({{ window_end }} - {{ window_start }}) and hour < {{ window_start }}
{%- endset -%}
{%- endif -%}
with

hourly as (

    select
        hourly.*,
        -- where the environment's current adoption is measured from
        {% if current_from_latest_day -%}
        greatest(
            max(hourly.hour) filter (where {{ in_window }})
                over (partition by hourly.org_id, hourly.project_id, hourly.environment)
                - interval 23 hour,
            {{ window_start }}
        )
        {%- else -%}
        {{ window_start }}
        {%- endif %} as current_start
    from {{ ref('agg_release_health_hourly') }} as hourly
    where hourly.hour < {{ window_end }}
      and {{ scope_predicate('hourly', org_id, project_id) }}

),

releases as (

    select
        org_id,
        project_id,
        release,
        environment,
        sum(stored_sessions) filter (where {{ in_window }})::bigint as stored_sessions,
        sum(adjusted_sessions) filter (where {{ in_window }}) as adjusted_sessions,
        sum(crashed_sessions) filter (where {{ in_window }})::bigint as crashed_sessions,
        sum(errored_sessions) filter (where {{ in_window }}) as errored_sessions,
        sum(weighted_duration_ms) filter (where {{ in_window }}) as weighted_duration_ms,
        sum(weighted_sessions_with_duration) filter (where {{ in_window }})
            as weighted_sessions_with_duration,
        coalesce(sum(adjusted_sessions) filter (where {{ in_window }} and hour >= current_start), 0)
            as current_adjusted_sessions,
        sum(adjusted_sessions) filter (where {{ in_trend_period }}) as trend_adjusted_sessions,
        sum(crashed_sessions) filter (where {{ in_trend_period }})::bigint as trend_crashed_sessions,
        sum(adjusted_sessions) filter (where {{ in_previous_period }}) as previous_adjusted_sessions,
        sum(crashed_sessions) filter (where {{ in_previous_period }})::bigint as previous_crashed_sessions,
        -- first and last session of the release, up to the window's end
        min(first_started_at) as first_seen,
        max(last_started_at) as last_seen

    from hourly
    group by all
    having count(*) filter (where {{ in_window }}) > 0

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
    where hour < current_start
    group by all

),

peak_adoption as (

    -- the release's highest share of its environment on any UTC day (or the part of one) before
    -- its current adoption is measured
    select
        org_id,
        project_id,
        release,
        environment,
        max({{ percentage('adjusted_sessions', 'environment_sessions') }}) as peak_adoption_rate

    from (
        select
            *,
            sum(adjusted_sessions) over (partition by org_id, project_id, environment, day)
                as environment_sessions
        from daily_adoption
    )
    group by all

),

persons as (

    {{ window_persons(window_start, window_end, ref('agg_release_users_daily'), org_id, project_id) }}

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
        releases.org_id,
        releases.project_id,
        releases.release,
        releases.environment,
        releases.stored_sessions,
        releases.adjusted_sessions,
        releases.crashed_sessions,
        releases.errored_sessions,
        coalesce(users.adjusted_users, 0) as adjusted_users,
        coalesce(users.crashed_users, 0) as crashed_users,
        {{ percentage('releases.adjusted_sessions - releases.crashed_sessions', 'releases.adjusted_sessions') }}
            as crash_free_session_rate,
        {{ percentage('users.adjusted_users - users.crashed_users', 'users.adjusted_users') }}
            as crash_free_user_rate,
        {{ percentage('releases.errored_sessions', 'releases.adjusted_sessions') }}
            as error_rate,
        -- sampling-weighted, over the sessions that have a duration
        if(coalesce(releases.weighted_sessions_with_duration, 0) = 0, null,
            releases.weighted_duration_ms / releases.weighted_sessions_with_duration) as avg_duration_ms,
        {{ percentage(
            'releases.current_adjusted_sessions',
            'sum(releases.current_adjusted_sessions) over (partition by releases.org_id, releases.project_id, releases.environment)',
        ) }} as current_adoption_rate,
        {{ percentage(
            'releases.adjusted_sessions',
            'sum(releases.adjusted_sessions) over (partition by releases.org_id, releases.project_id, releases.environment)',
        ) }} as adoption_rate,
        {{ percentage('releases.trend_adjusted_sessions - releases.trend_crashed_sessions', 'releases.trend_adjusted_sessions') }}
            as trend_crash_free_session_rate,
        {{ percentage('releases.previous_adjusted_sessions - releases.previous_crashed_sessions', 'releases.previous_adjusted_sessions') }}
            as previous_crash_free_session_rate,
        peak_adoption.peak_adoption_rate,
        releases.first_seen,
        releases.last_seen

    from releases
    left join peak_adoption using (org_id, project_id, release, environment)
    left join users using (org_id, project_id, release, environment)

),

final as (

    select
        org_id,
        project_id,
        release,
        environment,
        {{ window_start }} as window_start,
        {{ window_end }} as window_end,
        round(adjusted_sessions)::bigint as total_sessions,
        crashed_sessions,
        round(adjusted_users)::bigint as total_users,
        crashed_users,
        round(crash_free_session_rate, 2) as crash_free_session_rate,
        round(crash_free_user_rate, 2) as crash_free_user_rate,
        round(error_rate, 2) as error_rate,
        round(adoption_rate, 2) as adoption_rate,
        {{ adoption_stage('current_adoption_rate', 'peak_adoption_rate') }} as adoption_stage,
        round(current_adoption_rate, 2) as current_adoption_rate,
        round(peak_adoption_rate, 2) as peak_adoption_rate,
        round(avg_duration_ms)::bigint as avg_duration_ms,
        first_seen,
        last_seen,
        round(trend_crash_free_session_rate - previous_crash_free_session_rate, 2)
            as crash_free_rate_trend,
        stored_sessions,
        adjusted_sessions,
        adjusted_users,
        errored_sessions

    from rates

)

select * from final
{%- endmacro %}
