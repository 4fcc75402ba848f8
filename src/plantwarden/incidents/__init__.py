"""Incidents and response actions; today the quarantine list that the gateway enforces."""
