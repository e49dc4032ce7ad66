"""memorisation."""
