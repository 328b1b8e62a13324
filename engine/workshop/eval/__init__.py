"""Evaluation: metrics (pure) and the ``kesu eval`` command."""
