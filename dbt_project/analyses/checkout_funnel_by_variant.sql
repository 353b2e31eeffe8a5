-- An analyst's funnel: how the `new-checkout` flag's variants convert from starting to completing
-- a checkout within a day. `loom dbt compile --select checkout_funnel_by_variant` renders the SQL
-- under target/compiled/; `loom dbt show --inline` runs the same macro call directly.

{{ funnel(['checkout_started', 'checkout_completed'], conversion_window='1 day', breakdown_flag='new-checkout') }}
