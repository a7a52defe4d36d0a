"""What the GUI shows, computed without Qt: lesion overlays and contours, the decoded lesion
for the viewer, the pixel read-out, the browser table, the pairwise heatmap matrix, and the
analysis run when a dataset opens.

Imports ``dataset`` and ``agreement``.
"""
