"""Detection rules: YAML files close to Sigma, compiled to numpy masks over record batches."""
