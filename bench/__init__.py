"""dfft benchmarks (not tests): `python -m bench` from the repository root. See docs/performance.md."""
