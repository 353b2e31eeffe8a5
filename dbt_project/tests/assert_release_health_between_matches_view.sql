-- The table function and the view are one SQL: over the view's window they agree row for row.
with

view_rows as (

    select * from {{ ref('release_health') }}

),

bounds as (

    select min(window_start) as window_start, max(window_end) as window_end from view_rows

),

function_rows as (

    select * from {{ ref('release_health_between') }}(
        (select window_start from bounds), (select window_end from bounds)
    )

)

select * from (select * from view_rows except select * from function_rows)
union all
select * from (select * from function_rows except select * from view_rows)
