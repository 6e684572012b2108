"""The fault harness: every operation type under crashes, API faults, node loss and hostile input.

`hack/faults` runs it all (`python -m tests.faults`); `tests/cluster/test_faults_sample.py` runs a
few cases of each category in `hack/test` so the harness cannot rot.
"""
