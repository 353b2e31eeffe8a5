"""The ingest API: validates, authenticates and lands events, identities and sessions."""
