"""Datasets as read from disk: the model (Dataset, Lesion, Segmentation), loaders for each
layout, lazy image and mask decoding, mask QA, splits, labels, and the embedded demo.

Imports no other domain package of the core.
"""
