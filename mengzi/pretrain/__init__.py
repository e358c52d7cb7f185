"""Pre-training engine."""
