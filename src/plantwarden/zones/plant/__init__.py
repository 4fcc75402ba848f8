"""plant.yaml: the plant model as code (schema, loading with file/line/column errors, the model as values)."""
