{{ config(materialized='ephemeral') }}

-- The pipeline's clock: `as_of` is the end of the latest window ever processed, and
-- `previous_as_of` the same without the current run's window. Sessions without an end turn
-- abnormal once as_of passes their deadline; the ones whose deadline fell in
-- (previous_as_of, as_of] changed status in this run. Both are stable when a window reruns and
-- do not depend on the order windows ran in.

with

windows as (

    select
        window_start,
        window_end,
        {% if is_windowed() %}
        window_start = {{ window_start() }} and window_end = {{ window_end() }}
        {% else %}
        window_start = timestamp '-infinity'
            and window_end = (select max(window_end) from {{ ref('int_processed_windows') }} where window_start = timestamp '-infinity')
        {% endif %} as is_current

    from {{ ref('int_processed_windows') }}

)

select
    max(window_end) as as_of,
    max(window_end) filter (where not is_current) as previous_as_of,
    {{ var('abnormal_session_timeout_hours', env_var('LOOM_ABNORMAL_SESSION_TIMEOUT_HOURS', '24')) | int }} as abnormal_timeout_hours
from windows
