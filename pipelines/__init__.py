"""Regula: SageMaker Pipelines that retrain with stronger regularization until the model generalizes."""

__version__ = "0.1.0"
