{% macro lookup_layout(columns, row_group_size=8192) %}
    {#-
        Post-hook of a table read by point lookups (the read API's persons/{distinct_id}): its
        Parquet files sorted by the lookup key, in small row groups, so that a lookup reads the
        one row group whose min/max can hold the key instead of the whole table. Both settings live in the lake's catalog: DuckLake then sorts
        every insert and every compaction of the table. The first run after the table is created
        sets them and rewrites the rows it already holds, after the model's transaction (DuckLake
        takes no settings for a table created in the open transaction); later runs only check.
    -#}
    {%- if execute and target.name == 'lake' -%}
        {%- set catalog = this.database -%}
        {%- set entry = this.schema ~ '.' ~ this.identifier -%}
        {%- set found = run_query(
            "select count(*) from " ~ catalog ~ ".options() where option_name = "
            ~ "'parquet_row_group_size' and scope = 'TABLE' and scope_entry = '" ~ entry ~ "'"
        ).columns[0].values()[0] -%}
        {%- if found == 0 -%}
            call {{ catalog }}.set_option(
                'parquet_row_group_size', {{ row_group_size }},
                table_name => '{{ this.identifier }}', schema => '{{ this.schema }}'
            );
            alter table {{ this }} set sorted by ({{ columns | join(', ') }});
            begin transaction;
            create temporary table lookup_layout_rows as select * from {{ this }};
            delete from {{ this }};
            insert into {{ this }} select * from lookup_layout_rows;
            drop table lookup_layout_rows;
            commit;
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
