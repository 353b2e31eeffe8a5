{{ config(tags=['hourly'], severity='warn', fail_calc='coalesce(sum(warnings), 0)') }}

-- Not a failure: the ingestion warnings of the run's hours, per project and kind, so that the
-- Dagster UI shows their count (and a daily run all of them) as a warning on the asset.
select project_id, hour, kind, warnings, example_details
from {{ ref('ingestion_warnings') }}
{% if is_windowed() %}
where hour >= date_trunc('hour', {{ window_start() }}) and hour < {{ window_end() }}
{% endif %}
