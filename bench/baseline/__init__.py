"""The plain agent `bench.compare` measures the project against: see `bench.baseline.agent`."""
