"""Widgets of the main window; each module holds one widget (``lesion_view.py``: ``LesionView``)."""
