"""Evaluation: measuring what the trained model reads and says."""
