"""Reviewing a dataset: the per-dataset SQLite workspace and the reviewers' decisions.

Imports ``dataset`` only.
"""
