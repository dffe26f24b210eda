"""Training one run: data, models, the loop, where it runs, and the run's life
(:func:`learnai.train.run.run`)."""
