{{ config(materialized='table_function', parameters=['scope_org_id', 'scope_project_id', 'range_start', 'range_end']) }}

-- release_health_between for one org's project: `select * from
-- analytics.project_release_health_between('acme', 1, timestamp '2026-01-15',
-- timestamp '2026-01-19')`. The tenant filter is applied inside, at the aggregates' scans, so a
-- call costs what that project's rows cost, not what every org's do. The read API calls it.

{{ release_health_sql('range_start', 'range_end', org_id='scope_org_id', project_id='scope_project_id') }}
