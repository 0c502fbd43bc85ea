"""Benchmarks of the worker, the sandbox and the fake providers, and the baseline agent they are compared with."""
