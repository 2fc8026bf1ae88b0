"""Reports of torchconform runs.

facts.py    environment facts of a run (torch build, GPUs, machine, suite commit)
results.py  the per-run JSON (schema in docs/report-schema.md) and keeping earlier reports
html.py     pytest-html columns and environment table
repro.py    a script reproducing a failed test outside pytest
matrix.py   many runs' JSON -> one static matrix.html (`python -m torchconform.report`)
"""
