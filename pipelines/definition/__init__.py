"""The Regula pipeline definition: its parameters, the unrolled retraining ladder and its job builders, the rendering
session, and the SDK quarantine (sdk.py)."""
