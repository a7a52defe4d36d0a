"""Agreement between annotators: pairwise metrics, consensus (majority vote, STAPLE),
disagreement maps, the per-lesion computation, the engine that runs it over a dataset, its
cache, and the pairwise and image-level tables.

Imports ``dataset`` only.
"""
