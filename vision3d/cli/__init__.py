"""The ``v3d`` command line: the only place that prints; everything else returns values or raises."""
