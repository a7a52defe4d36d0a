"""Everything about training that needs no torch: the HDF5 training-set export, the run
spec and event schema shared with the trainer, run records, training plans, predictions,
remote (SSH) runs and fine-tune comparisons.

May import every other domain package; none imports it.
"""
