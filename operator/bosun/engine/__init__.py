"""The Operation engine: runs any table of steps, crash-safely, with rollback. Knows no operation type."""
