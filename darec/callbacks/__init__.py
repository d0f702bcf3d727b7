"""Callbacks: alignment switches and schedules, and the prediction writer."""

from darec.callbacks.prediction_writer import PredictionWriter

__all__ = ["PredictionWriter"]
