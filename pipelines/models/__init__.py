"""Registered models: the Model Registry approval flow (registry.py) and scoring a table with a model (predict.py)."""
