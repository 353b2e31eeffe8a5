-- Without filters the trend function equals release_health_trend, for every grain of the project
-- with most buckets (a table function takes constant arguments, not one call per row). The
-- unrounded sums are compared to 6 decimals: they may be added up in another order.
{% set compared -%}
    org_id, project_id, grain, bucket_start, total_sessions, crashed_sessions, total_users,
    crashed_users, crash_free_session_rate, crash_free_user_rate, stored_sessions,
    round(adjusted_sessions, 6) as adjusted_sessions, round(adjusted_users, 6) as adjusted_users
{%- endset %}
with

mart as (

    select * from {{ ref('release_health_trend') }}

),

busiest as (

    select org_id, project_id
    from mart
    group by org_id, project_id
    order by count(*) desc, org_id, project_id
    limit 1

),

mart_rows as (

    select {{ compared }} from mart semi join busiest using (org_id, project_id)

),

function_rows as (
    {% for grain in ['hour', 'day', 'week'] %}
    select {{ compared }} from {{ ref('project_health_trend') }}(
        (select org_id from busiest), (select project_id from busiest), '{{ grain }}'
    )
    {{ 'union all' if not loop.last }}
    {% endfor %}
)

select * from (select * from mart_rows except select * from function_rows)
union all
select * from (select * from function_rows except select * from mart_rows)
