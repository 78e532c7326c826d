"""Every number of a study, read from the store (never trained here): the insights study and its
sharing sweep, the strategy comparison, the search study. Reports render these results."""
