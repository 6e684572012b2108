"""A seeded sample of the fault harness (`hack/faults`), so it runs in `hack/test` and cannot rot:
one case each of crash, API faults, node loss and store loss, and a slice of the hostile manifests. The full
harness is its own command; its table is in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.__main__ import all_cases, run
from tests.faults.harness import select, table
from tests.support.cluster import LocalCluster

pytestmark = pytest.mark.cluster
SEED = 20261126


@pytest.mark.timeout(900)
def test_a_sample_of_the_fault_harness_converges_with_no_violation(cluster: LocalCluster, tmp_path: Path) -> None:
    cases = select(all_cases(), seed=SEED, per_category=1, only={"crash", "api", "node", "store"}, case_id=None)
    cases += select(all_cases(), seed=SEED, per_category=15, only={"hostile"}, case_id=None)
    outcomes = run(cases, SEED, tmp_path, log=False)
    assert {o.case.category for o in outcomes} == {"crash", "api", "node", "store", "hostile"}
    assert all(o.converged for o in outcomes), (
        table(outcomes) + "\n" + "\n".join(f"{o.case.id}: {v}" for o in outcomes for v in o.violations)
    )
