"""IAA Desktop: inter-annotator agreement in medical image segmentation."""

__version__ = "0.1.0"
