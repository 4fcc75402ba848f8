"""The keys under which the root command gives `sensor run` its detectors' factories.

Kept apart from `detectors.py` so that the root command can name them without importing the
sensor (and the records plane) in every process; see `detectors.py` for how they are used.
"""

ZONE_CHECK_FACTORY = "plantwarden.sensor.zone_check"
"""Key of the zone check's factory: `(runtime, plant, site, inner)`."""
RULES_FACTORY = "plantwarden.sensor.rules"
"""Key of the rule engine's factory: `(runtime, directory, site, inner, plant)`."""
BASELINE_FACTORY = "plantwarden.sensor.baselines"
"""Key of the learned baselines' factory: `(runtime, site, inner, plant, learning_ns=...)`."""
PROCESS_FACTORY = "plantwarden.sensor.process_models"
"""Key of the process models' factory: `(runtime, site, inner, learn_ns=..., trained_by=...)`."""
