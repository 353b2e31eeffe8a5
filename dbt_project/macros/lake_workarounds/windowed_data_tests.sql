{#-
    WORKAROUND, written for dbt-core 1.11.16 and dbt-duckdb 1.11.1 (tests/test_workaround_pins.py
    fails when one of them moves).

    What: an override of dbt-duckdb's `get_where_subquery`, the relation a data test reads. A
    test's own `where` cannot name the run's window: the pipeline parses the project once, without
    vars (warehouse/dbt.py), and a `where` rendering `var('window_start')` would keep the value it
    had at parse time. Measured: hourly tests included, an hourly run after 30 days costs 1.04x one
    after 1 day (docs/benchmarks.md, "Hourly runs and backfills"); no run without it was recorded.
-#}
{#-
    Which rows a data test checks. The hourly build runs only the tests tagged `hourly`, and a
    test with `meta: {window_column: <column or expression>}` then checks only the rows whose
    column falls in or after the run's window: what the window brought and touched, so its cost
    follows the new data, not the history. Unwindowed (the daily `data_tests` job, `make
    dbt-build`), every test checks every row. A test's own `where` applies as well.
-#}
{% macro duckdb__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set meta = config.get('meta') if execute else none -%}  {#- parsing has no configs yet -#}
    {%- set window_column = meta.get('window_column') if meta is mapping else none -%}
    {%- if window_column and is_windowed() -%}
        {%- set in_window = '(' ~ window_column ~ ') >= ' ~ window_start() -%}
        {%- set where = '(' ~ where ~ ') and ' ~ in_window if where else in_window -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}
