"""The simulated plant: zones, hosts and PLCs with register maps (`plant.py`), and the physics of
their processes (`physics.py`), deterministic for a seed. No network yet."""
