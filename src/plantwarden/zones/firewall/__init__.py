"""Enforcement at layer 3/4: nftables rulesets compiled from the plant model, and their drift.

`render.py` compiles a site into a ruleset for the router between its zones (normal, island and
fail-closed variants); `nftjson.py` reads a loaded or exported ruleset back; `drift.py` compares
the two and turns a ruleset into `zones.plant.permits.Permit` values; `cli.py` holds
`plantwarden firewall render` and `plantwarden firewall drift`.
"""
