"""Using wsnas from outside the package (docs/python.md): ``examples.my_space`` (a plug-in search
space), the scripts of the Python guide (``rank_my_space``, ``own_tensors``, ``pada_gaea_loop``,
``read_store``; run each as ``python -m examples.NAME`` from the repository root), and
``wsnas-plugin-demo/``, a package that adds a space and a dataset through entry points."""
