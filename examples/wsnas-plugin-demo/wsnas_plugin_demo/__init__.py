"""A wsnas plug-in: the search space ``demo`` and the dataset ``shapes``, declared as entry points
of the groups ``wsnas.spaces`` and ``wsnas.datasets`` in this package's pyproject.toml."""
