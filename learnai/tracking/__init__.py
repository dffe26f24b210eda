"""Everything learnai records in MLflow: stores (opened, checked, explained when they
fail), one run's recorder, runs left behind by dead processes, names and links."""
