"""Detection: observed traffic checked against the plant model (zones, conduits, channels, windows),
with violations aggregated per rule, endpoints, operation and time window and raised as alerts."""
