"""wsnas: weight-sharing neural architecture search, measured against ground truth."""

__version__ = "0.1.0"
