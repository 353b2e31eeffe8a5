-- The table function and the view are one SQL: over the view's window they agree row for row,
-- but for current adoption, which the view measures over each environment's last 24 hours of data
-- and the function over the window it is given (and so the stage and the peak before it), and for
-- the crash-free trend, which compares those same periods with the ones before them.
with

view_rows as (

    select * exclude (current_adoption_rate, peak_adoption_rate, adoption_stage, crash_free_rate_trend)
    from {{ ref('release_health') }}

),

bounds as (

    select min(window_start) as window_start, max(window_end) as window_end from view_rows

),

function_rows as (

    select * exclude (current_adoption_rate, peak_adoption_rate, adoption_stage, crash_free_rate_trend)
    from {{ ref('release_health_between') }}(
        (select window_start from bounds), (select window_end from bounds)
    )

)

select * from (select * from view_rows except select * from function_rows)
union all
select * from (select * from function_rows except select * from view_rows)
