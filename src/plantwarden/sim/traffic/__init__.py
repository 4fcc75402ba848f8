"""The traffic generator: the simulated plant's traffic, normal and under attack, as capture files
with labels and a ledger (`generate`)."""
