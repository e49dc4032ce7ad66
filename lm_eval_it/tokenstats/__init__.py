"""Per-token statistics as plug-ins: each reduces chunks of logits into per-document sums at once."""
