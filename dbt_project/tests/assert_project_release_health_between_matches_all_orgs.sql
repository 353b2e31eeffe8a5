-- The one-project table function returns exactly that project's rows of the all-orgs one, for
-- every project, over the whole history.
with

bounds as (

    select min(window_start) as window_start, max(window_end) as window_end
    from {{ ref('release_health') }}

),

projects as (

    select distinct org_id, project_id from {{ ref('agg_release_health_hourly') }}

),

all_orgs as (

    select * from {{ ref('release_health_between') }}(
        (select window_start from bounds), (select window_end from bounds)
    )

),

per_project as (

    select scoped.*
    from projects
    cross join lateral (
        select * from {{ ref('project_release_health_between') }}(
            projects.org_id, projects.project_id,
            (select window_start from bounds), (select window_end from bounds)
        )
    ) as scoped

)

select * from (select * from all_orgs except all select * from per_project)
union all
select * from (select * from per_project except all select * from all_orgs)
