"""Assets: raw loads per stream, the dbt project, and the serving snapshot."""
