"""Process anomaly models: multivariate, streaming, explained per variable (docs/detection.md)."""
