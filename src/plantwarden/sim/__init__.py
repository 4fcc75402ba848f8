"""The simulated plant: zones, hosts and PLCs with register maps (`plant.py`), the physics of
their processes (`physics.py`), the hosts' behaviour on the network (`behaviour.py`), attack
scenarios (`attacks.py`), the traffic generator (`traffic/`), and the running plant with its
Modbus/TCP servers, clients and software tap (`runtime.py`, `tap.py`). See docs/sim.md."""
