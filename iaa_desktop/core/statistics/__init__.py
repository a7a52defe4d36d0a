"""Statistics over agreement tables: group comparisons (malignant vs benign), the analysis
tables and their writers, the views behind the agreement plots, and the HTML report.

Imports ``dataset``, ``agreement`` and ``display``; never ``training``.
"""
