"""Show, report and validate: reading and judging results."""
