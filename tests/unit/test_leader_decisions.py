"""Leader election's decisions: when a Lease may be taken, and what holding it writes."""

from __future__ import annotations

from datetime import UTC, datetime

from bosun.leader import LeaseView, claim_spec, identity_of, may_take

NOW = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)


def test_a_missing_released_or_own_lease_may_be_taken_at_once() -> None:
    assert may_take(None, "me", 0, 15)
    assert may_take(LeaseView("", "2026-11-26T11:59:59.000000Z", 3), "me", 0, 15)
    assert may_take(LeaseView("me", "2026-11-26T11:59:59.000000Z", 3), "me", 0, 15)


def test_another_holders_lease_only_after_it_went_unrenewed_for_a_whole_lease() -> None:
    theirs = LeaseView("them", "2026-11-26T11:00:00.000000Z", 3)  # long ago by the wall clock: not trusted
    assert not may_take(theirs, "me", 14.9, 15)
    assert may_take(theirs, "me", 15.0, 15)


def test_renewal_keeps_the_acquire_time_and_the_transition_count() -> None:
    mine = LeaseView("me", "2026-11-26T11:59:58.000000Z", 4)
    spec = claim_spec(mine, "me", NOW, 15, "2026-11-26T11:00:00.000000Z")
    assert spec == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-11-26T11:00:00.000000Z",
        "renewTime": "2026-11-26T12:00:00.123456Z",
        "leaseTransitions": 4,
    }


def test_a_takeover_counts_a_transition_and_starts_a_new_acquire_time() -> None:
    theirs = LeaseView("them", "2026-11-26T11:59:00.000000Z", 4)
    spec = claim_spec(theirs, "me", NOW, 15, None)
    assert (spec["holderIdentity"], spec["leaseTransitions"], spec["acquireTime"]) == ("me", 5, spec["renewTime"])
    assert claim_spec(None, "me", NOW, 15, None)["leaseTransitions"] == 0
    assert claim_spec(LeaseView("", "", 4), "me", NOW, 15, None)["leaseTransitions"] == 4  # released: no transition


def test_identity_is_the_pod_name_in_a_pod_and_unique_outside() -> None:
    assert identity_of("bosun-7d9f-abc", "bosun-7d9f-abc") == "bosun-7d9f-abc"
    one, two = identity_of("", "laptop"), identity_of("", "laptop")
    assert one.startswith("laptop_") and one != two
