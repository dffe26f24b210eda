"""``hydra/launcher=vectorized``: a sweep's same-shaped jobs trained as one stacked model."""
