"""archive.bounded_calls: a request S3 does not answer in time is the archive's fault
(ArchiveUnavailable) unless the call's deadline gave it less time than any answer takes
(ArchiveDeadline, the caller's fault: DEADLINE_EXCEEDED, not UNAVAILABLE)."""

from __future__ import annotations

import threading

import pytest

from archive import deadline
from archive.bounded_calls import BoundedCalls
from archive.errors import ArchiveDeadline, ArchiveUnavailable


@pytest.fixture
def s3_silent():
    answer = threading.Event()
    yield lambda: answer.wait(5)  # a request S3 answers only when the test ends
    answer.set()


def run_with_timeout(seconds: float | None, calls: BoundedCalls, request) -> object:
    deadline.set_timeout(seconds)
    try:
        return calls(request)
    finally:
        deadline.set_timeout(None)


def test_a_request_given_its_time_and_unanswered_is_the_archive_unavailable(s3_silent):
    calls = BoundedCalls("s3", call_timeout=0.3, max_inflight=4)
    with pytest.raises(ArchiveUnavailable) as error:
        run_with_timeout(None, calls, s3_silent)  # no deadline: the store's 0.3 s
    assert not isinstance(error.value, ArchiveDeadline)
    assert str(error.value) == "s3 did not answer within 0.3 s"
    with pytest.raises(ArchiveUnavailable) as error:  # a deadline leaving it 0.35 s
        run_with_timeout(deadline.MARGIN_SECONDS + 0.35, calls, s3_silent)
    assert not isinstance(error.value, ArchiveDeadline)


def test_a_request_the_deadline_left_too_little_time_is_the_deadline(s3_silent):
    calls = BoundedCalls("s3", call_timeout=10, max_inflight=4)
    with pytest.raises(ArchiveDeadline, match="left 0.1. s for a request to s3"):
        run_with_timeout(deadline.MARGIN_SECONDS + 0.1, calls, s3_silent)
    with pytest.raises(ArchiveDeadline, match="left no time"):
        run_with_timeout(deadline.MARGIN_SECONDS / 2, calls, s3_silent)


def test_an_answer_within_the_deadline_is_returned():
    calls = BoundedCalls("s3", call_timeout=10, max_inflight=4)
    assert run_with_timeout(deadline.MARGIN_SECONDS + 0.1, calls, lambda: "stored") == "stored"
