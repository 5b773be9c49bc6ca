"""The ssesync benchmark: ssesync side by side with a raw socket and the peers.

Run it from the repository root with ``python -m tests.benchmarks`` (see
``README.md`` in this directory). It is not part of the default test run.

Keep this module free of imports: every client subprocess imports it.
"""
