"""Background workers: processes that consume the event log and act outside the store."""
