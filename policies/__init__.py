"""The security baseline: pure rules (rules.py) and the Pulumi policy pack (__main__.py)."""
