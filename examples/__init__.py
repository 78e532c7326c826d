"""Examples of using wsnas from outside the package (``examples.my_space``: a plug-in search space)."""
