"""Activity: archived operation records, weekly CSV reports, and how long Operation objects stay."""
