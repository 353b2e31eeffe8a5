{#-
    WORKAROUND, written for dbt-core 1.11.16 and dbt-duckdb 1.11.1 on DuckDB 1.5.5 with the DuckLake
    extension d8a1881e (tests/test_workaround_pins.py fails when one of them moves).

    What: the incremental strategy `replace_all`, for models rebuilt whole every run: their rows
    are deleted and inserted in one transaction. dbt's `table` materialization builds a new table
    and swaps it in by renames (three DDL statements, two lake commits), and on DuckLake every DDL
    commit makes the run's next queries, and every reader, reload the whole catalog.
    Measured: a quiet hour made 23 DDL commits, now 0 (with unchanged_definitions.sql;
    docs/benchmarks.md, "The lake's cost": the lake's run 6.8 s -> 4.8 s with the definitions and
    compaction changes). Re-check when dbt-duckdb or DuckLake make a table swap one commit.
-#}
{% macro get_incremental_replace_all_sql(arg_dict) %}
  {#- Its columns change only when the model's do (on_schema_change). -#}
  {%- set columns = arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') -%}
  delete from {{ arg_dict['target_relation'] }};
  insert into {{ arg_dict['target_relation'] }} ({{ columns }})
  select {{ columns }} from {{ arg_dict['temp_relation'] }}
{% endmacro %}
