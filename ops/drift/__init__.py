"""``python -m ops drift``: a stack's state against what really runs (AWS and VPS)."""
