"""MITRE ATT&CK for ICS, pinned: the techniques alerts are mapped to, shipped as package data.

The data files (`ics-attack-<version>.json`, `enterprise-subset.json`) sit next to this module;
see README.md in this folder for where they come from and `matrix.py` for the look-ups.
"""

from plantwarden.alerts.attack.matrix import (
    MATRIX_VERSION,
    Tactic,
    Technique,
    is_active,
    tactics,
    technique,
    techniques,
)

__all__ = ["MATRIX_VERSION", "Tactic", "Technique", "is_active", "tactics", "technique", "techniques"]
