"""The plant model: sites, network segments, and (later) zones, conduits and their rules."""
