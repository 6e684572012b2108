"""Operation types: one module per type, each a documented step table; `registry` maps type to table."""
