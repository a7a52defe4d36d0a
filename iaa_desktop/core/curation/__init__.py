"""Curating a dataset from its reviews: the adjudicated dataset export.

Sits beside ``training`` at the top of the core's layers: it reads reviews (``review``),
computes consensus (``agreement``) and writes a dataset (``dataset`` models and checks).
"""
