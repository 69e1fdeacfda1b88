"""Session files: their typed schema, checked YAML loading with line numbers."""
