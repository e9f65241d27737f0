"""The YAML schema of configs (pydantic) and the YAML reader."""
