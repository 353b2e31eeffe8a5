with

source as (

    select * from {{ source('raw', 'identities') }}

),

typed as (

    select
        uuid,
        org_id,
        project_id,
        coalesce(nullif(trim(environment), ''), 'production') as environment,
        -- PostHog events arrive with their event name; native calls with an explicit kind
        coalesce(
            lower(nullif(kind, '')),
            case event
                when '$identify' then 'identify'
                when '$create_alias' then 'alias'
                when '$merge_dangerously' then 'merge_dangerously'
                when '$set' then 'set'
            end
        ) as kind,
        event,
        distinct_id,
        coalesce(
            other_id,
            case
                when event = '$identify' then properties ->> '$."$anon_distinct_id"'
                when event in ('$create_alias', '$merge_dangerously') then properties ->> 'alias'
            end
        ) as other_id,
        -- keys starting with `$` need a quoted JSON path: '$."$set"'
        coalesce("set", properties -> '$."$set"') as set_properties,
        coalesce(set_once, properties -> '$."$set_once"') as set_once_properties,
        coalesce(properties, '{}'::json) as properties,
        -- PostHog's person-less events: only a JSON false turns person processing off
        (properties -> '$."$process_person_profile"') is distinct from 'false'::json as processes_person,
        "timestamp" as occurred_at,
        received_at,
        _received_hour as received_hour,
        _file as landing_file

    from source

),

classified as (

    select
        *,
        -- whether PostHog would apply this operation as a link: identify, alias or
        -- merge_dangerously between two different ids, neither of them illegal, from an event
        -- allowed to change persons
        (kind in ('identify', 'alias', 'merge_dangerously')
            and processes_person
            and other_id is not null
            and other_id <> distinct_id
            and {{ is_mergeable_distinct_id('distinct_id') }}
            and {{ is_mergeable_distinct_id('other_id') }}) as is_link

    from typed

)

select * from classified
