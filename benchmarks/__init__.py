"""Benchmarks of napari-alma: ``python -m benchmarks NAME [args]`` prints JSON figures."""
