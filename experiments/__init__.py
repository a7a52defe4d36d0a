"""The cross-validated study on the shared real images (``cv_study.py``) and bounded CPU runs.

A package so that the scripts import each other (``from experiments import cv_report``) and
``tests/experiments`` imports them, with the repository root on ``sys.path`` (the scripts put
it there themselves; pytest does for the tests). Not part of the installed wheel.
"""
