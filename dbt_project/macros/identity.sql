{#-
    Identity helpers shared by the identity models (see models/intermediate/identity/).
-#}

{#- person_id: a real UUIDv5 (RFC 4122: SHA-1 of namespace + name) of the name
    '<org_id>:<founding distinct_id>' in the Loom person namespace, the same construction PostHog
    uses for its person rows (`uuidFromDistinctId`, with the team id there). DuckDB has sha1 but no
    uuid5, so the version and variant bits are set by hand; warehouse.dbt.person_uuid computes the
    identical value in Python (`uuid.uuid5(PERSON_NAMESPACE, f"{org_id}:{distinct_id}")`). -#}
{% macro person_uuid(org_id, distinct_id) -%}
    list_transform(
        [sha1(unhex('{{ person_namespace_hex() }}') || encode({{ org_id }} || ':' || {{ distinct_id }}))],
        lambda h: substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-5' || substr(h, 14, 3) || '-'
            || substr('89ab', ((strpos('0123456789abcdef', substr(h, 17, 1)) - 1) & 3) + 1, 1)
            || substr(h, 18, 3) || '-' || substr(h, 21, 12)
    )[1]
{%- endmacro %}

{#- uuid.uuid5(uuid.NAMESPACE_URL, 'https://github.com/loom-warehouse/person') -#}
{% macro person_namespace_hex() -%}
    d0c017c8e238539a8891518496f1c1c2
{%- endmacro %}

{#- PostHog's `isDistinctIdIllegal`, negated: ids that stem from a bug or a placeholder are never
    merged. Some are illegal in any casing, others only exactly as written ('NaN' but not 'nan');
    both sets also match wrapped in single or double quotes, and a blank id is illegal. -#}
{% macro is_mergeable_distinct_id(column) -%}
    {%- set case_insensitive = ['anonymous', 'guest', 'distinctid', 'distinct_id', 'id',
                                'not_authenticated', 'email', 'undefined', 'true', 'false'] -%}
    {%- set case_sensitive = ['[object Object]', 'NaN', 'None', 'none', 'null', '0', 'undefined'] -%}
    ({{ column }} is not null
        and trim({{ column }}) <> ''
        and lower({{ column }}) not in ({{ quoted_variants(case_insensitive) }})
        and {{ column }} not in ({{ quoted_variants(case_sensitive) }}))
{%- endmacro %}

{% macro quoted_variants(ids) -%}
    {%- set literals = [] -%}
    {%- for id in ids -%}
        {%- for variant in [id, "'" ~ id ~ "'", '"' ~ id ~ '"'] -%}
            {%- do literals.append("'" ~ variant | replace("'", "''") ~ "'") -%}
        {%- endfor -%}
    {%- endfor -%}
    {{- literals | join(', ') -}}
{%- endmacro %}

{#- Pre-hook of the marts keyed by person: inside the model's transaction, delete the rows of every
    person that contains a distinct_id re-stitched in this run, so that persons merged away
    disappear; the model then inserts the current rows of all persons of those ids. -#}
{% macro delete_restitched_rows(distinct_id_column, is_list=false) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where person_id in (
            select stored.person_id
            from (
                select
                    org_id,
                    person_id,
                    {{ 'unnest(' ~ distinct_id_column ~ ')' if is_list else distinct_id_column }} as distinct_id
                from {{ this }}
            ) as stored
            semi join {{ ref('int_identity_replay') }} as restitched
                on restitched.org_id = stored.org_id and restitched.distinct_id = stored.distinct_id
        )
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
