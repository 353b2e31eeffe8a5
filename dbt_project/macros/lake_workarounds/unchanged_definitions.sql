{#-
    WORKAROUND, written for dbt-core 1.11.16 and dbt-duckdb 1.11.1 on DuckDB 1.5.5 with the DuckLake
    extension d8a1881e (tests/test_workaround_pins.py fails when one of them moves).

    What: overrides of dbt-core's `view` and dbt-duckdb's `table_function` materializations that
    leave an unchanged definition alone instead of re-creating it (below).
    Measured: a quiet hour made 23 DDL commits, now 0; checking the ten definitions cost ~1 s of a
    quiet hour's dbt step (`funnel` alone 0.3 s), so hourly builds leave them out of dbt
    (docs/benchmarks.md, "Hourly runs and backfills" and "The lake's cost").
-#}
{#
  Views and table macros are definitions, and an hourly run leaves one alone when the warehouse
  already holds exactly what it would create. Re-creating it anyway is a DDL commit, and on the
  lake every DDL commit makes the run's next queries, and every reader, reload the whole catalog
  from the catalog database (tens of milliseconds each on SQLite, several per model).

  "Exactly": the new definition is created as a temporary object of dbt's own in-memory database
  (free: no lake commit) and DuckDB's rendering of it is compared with its rendering of the
  definition in the warehouse: formatting and comments alone change nothing, a changed query or
  parameter does.

  A definition must not read the run's window vars: once a build has recorded the project's
  digest, hourly builds leave definitions out of dbt altogether (warehouse.dbt.DEFINITIONS), so
  one that did would stay at the window that first built it (tests/dbt_project/
  test_model_traps.py fails on it).
#}

{% macro definition_probe() %}loom_definition_probe{% endmacro %}

{% macro view_definition_unchanged(relation, sql) %}
  {% do run_query('create or replace temporary view ' ~ definition_probe() ~ ' as (' ~ sql ~ ')') %}
  {% set definitions = run_query(
      "select temporary, sql from duckdb_views() where (temporary and view_name = '"
      ~ definition_probe() ~ "') or (database_name = '" ~ relation.database
      ~ "' and schema_name = '" ~ relation.schema ~ "' and view_name = '" ~ relation.identifier ~ "')"
  ) %}
  {% do run_query('drop view ' ~ definition_probe()) %}
  {% set bodies = {} %}
  {% for row in definitions.rows %}
    {# "CREATE [TEMPORARY] VIEW <name> AS <body>": only the body is comparable #}
    {% do bodies.update({row[0]: modules.re.sub('^CREATE (TEMP |TEMPORARY )?VIEW \\S+ AS ', '', row[1])}) %}
  {% endfor %}
  {{ return(bodies | length == 2 and bodies[true] == bodies[false]) }}
{% endmacro %}

{% macro table_macro_definition_unchanged(relation, signature, sql) %}
  {#- The lake keeps a macro's rendering and parses it again when it loads: the probe takes the
      same round trip (a type name comes back quoted, for one), so it is created twice. -#}
  {% set rendered = 'select macro_definition from duckdb_functions() where database_name = '
      ~ "'temp' and function_name = '" ~ definition_probe() ~ "'" %}
  {% set probe = 'create or replace temporary macro ' ~ definition_probe() ~ '(' ~ signature ~ ') as table ' %}
  {% do run_query(probe ~ '(' ~ sql ~ ')') %}
  {% do run_query(probe ~ run_query(rendered).rows[0][0]) %}
  {% set definitions = run_query(
      "select database_name = 'temp', array_to_string(parameters, ', '), macro_definition"
      ~ " from duckdb_functions()"
      ~ " where function_type = 'table_macro' and ((database_name = 'temp' and function_name = '"
      ~ definition_probe() ~ "') or (database_name = '" ~ relation.database ~ "' and schema_name = '"
      ~ relation.schema ~ "' and function_name = '" ~ relation.identifier ~ "'))"
  ) %}
  {% do run_query('drop macro table ' ~ definition_probe()) %}
  {% set definition = {} %}
  {% for row in definitions.rows %}
    {% do definition.update({row[0]: (row[1], row[2])}) %}
  {% endfor %}
  {{ return(definition | length == 2 and definition[true] == definition[false]) }}
{% endmacro %}

{% macro leave_unchanged(target_relation) %}
  {% call noop_statement('main', 'UNCHANGED') -%}
    -- unchanged: {{ target_relation }} is left as it is
  {%- endcall %}
{% endmacro %}

{% macro finish_definition(target_relation) %}
  {#- What both definition materializations do after their main statement, as dbt's own do. -#}
  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do persist_docs(target_relation, model) %}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmacro %}

{% materialization view, adapter='duckdb' %}
  {#- dbt's own view materialization, minus the rename dance (create or replace is one
      statement in one transaction) and plus: an unchanged view is left as it is. -#}
  {%- set target_relation = this.incorporate(type='view') -%}
  {%- set existing_relation = load_cached_relation(this) -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% if existing_relation is not none and existing_relation.is_view
        and view_definition_unchanged(target_relation, sql) %}
    {{ leave_unchanged(target_relation) }}
  {% else %}
    {% if existing_relation is not none and not existing_relation.is_view %}
      {{ drop_relation_if_exists(existing_relation) }}
    {% endif %}
    {% call statement('main') -%}
      create or replace view {{ target_relation }} as ({{ sql }})
    {%- endcall %}
  {% endif %}

  {{ return(finish_definition(target_relation)) }}
{% endmaterialization %}

{% materialization table_function, adapter='duckdb' %}
  {#- dbt-duckdb's table_function (a table macro: a parameterized view), plus: an unchanged one
      is left as it is. -#}
  {%- set target_relation = api.Relation.create(
      identifier=model['alias'], schema=schema, database=database, type='view') -%}
  {%- set parameters = config.get('parameters') -%}
  {%- if not parameters -%}
    {%- set signature = '' -%}
  {%- elif parameters is string or parameters is number -%}
    {%- set signature = parameters | string -%}
  {%- else -%}
    {%- set signature = parameters | join(', ') -%}
  {%- endif -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% if table_macro_definition_unchanged(target_relation, signature, sql) %}
    {{ leave_unchanged(target_relation) }}
  {% else %}
    {% call statement('main') -%}
      create or replace function {{ target_relation.render() }}({{ signature }}) as table ({{ sql }})
    {%- endcall %}
  {% endif %}

  {{ return(finish_definition(target_relation)) }}
{% endmaterialization %}
