"""Thin kernel: settings, the store, errors, ids, clock, logging, backups and process supervision."""
