{{ config(tags=["hourly"]) }}

-- Every rate is a percentage.
select release, environment, crash_free_session_rate, crash_free_user_rate, error_rate, adoption_rate
from {{ ref('release_health') }}
where crash_free_session_rate not between 0 and 100
   or crash_free_user_rate not between 0 and 100
   or error_rate not between 0 and 100
   or adoption_rate not between 0 and 100
