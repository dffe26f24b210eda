"""What a run and a sweep show: loss curves, the fit plot, the training animation."""
