"""Benchmarks of the template (`make bench`); figures come from here, never from timed tests."""
