"""What a pass collects (alerting/dispatch/context)."""

from __future__ import annotations

from datetime import timedelta

from tests.alerting.factory import T0
from watchkeeper.alerting.dispatch.context import Pass, refused_by_storage
from watchkeeper.store.errors import StorageRefused, StorageUnavailable


def test_a_pass_wakes_at_the_earliest_instant_it_was_given() -> None:
    at = Pass(T0)
    assert at.next_wakeup() is None
    at.wakeups += [T0 + timedelta(minutes=5), T0 + timedelta(minutes=1), T0 + timedelta(hours=1)]
    assert at.next_wakeup() == T0 + timedelta(minutes=1)


def test_a_pass_knows_what_it_found_broken_by_kind_and_name() -> None:
    at = Pass(T0, found={("silence", "s1"): "invalid"})
    assert at.is_broken("silence", "s1")
    assert not at.is_broken("maintenance", "s1") and not at.is_broken("silence", "s2")


def test_storage_errors_stop_the_pass_and_others_do_not() -> None:
    assert refused_by_storage(ConnectionResetError())
    assert refused_by_storage(StorageUnavailable("database is locked"))
    assert refused_by_storage(StorageRefused("value too long"))
    assert not refused_by_storage(ValueError("bad matcher"))
