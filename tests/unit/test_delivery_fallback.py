"""The fallback step's error handling on a real SQLite outbox, with a stand-in renderer: a
refusal skips the channel with its reason and the chain goes on, an outage is tried again
only after a back-off (end to end: tests/integration/test_delivery_fallbacks.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy import insert

from server.delivery import fallback as fallback_module
from server.delivery.fallback import RETRY_SECONDS, Fallbacks
from server.delivery.routing import Router
from server.delivery.sealed import SealedInputs
from server.delivery.tables import delivery_inputs
from server.errors import InvalidInput, Unavailable
from tests.unit.test_delivery_dispatcher import T0, Clock, add, store  # noqa: F401


class Refusing:
    """A renderer that raises `error` for every channel, and counts its calls."""

    def __init__(self, error: Exception):
        self.error = error
        self.calls: list[str] = []

    def __call__(self, compose_input, channel):
        self.calls.append(channel)
        raise self.error


def fallbacks(store, render, channels=None) -> tuple[Fallbacks, dict]:  # noqa: F811
    sealed = SealedInputs(MultiFernet([Fernet(Fernet.generate_key())]))
    [delivery_id] = add(store, state="failed", reason="HTTP 400", fallbacks="email,print",
                        channel="sms")
    with store.engine.begin() as conn:
        conn.execute(insert(delivery_inputs).values(
            tenant="t", document_id="doc0", sealed=sealed.seal({"document_id": "doc0"}),
            created_at=T0, purge_at=T0 + timedelta(days=30)))
    step = Fallbacks(store, sealed, index=None, render=render,
                     router=Router(channels or {"email": "relay", "print": "print"}, {}),
                     expires_for=lambda provider: timedelta(hours=72), clock=Clock(),
                     on_event=lambda: None)
    return step, store.row(delivery_id)


def test_a_refused_render_skips_the_channel_and_the_chain_goes_on(store):  # noqa: F811
    render = Refusing(InvalidInput("the print page cannot hold this document's text"))
    step, row = fallbacks(store, render)
    assert step.fall_back(row) is None
    assert render.calls == ["email", "print"]  # each tried once, in the plan's order
    after = store.row(row["delivery_id"])
    assert after["state"] == "failed" and after["fallbacks"] == ""
    assert after["reason"] == (
        "HTTP 400; email fallback skipped: cannot be rendered: the print page cannot hold "
        "this document's text; print fallback skipped: cannot be rendered: the print page "
        "cannot hold this document's text")
    events = [e.reason for e in store.events_after("t", 0)]
    assert sum("fallback skipped" in e for e in events) == 2
    step.close()


def test_a_channel_without_a_provider_is_not_rendered(store):  # noqa: F811
    render = Refusing(InvalidInput("refused"))
    step, row = fallbacks(store, render, channels={"print": "print"})
    step.fall_back(row)
    assert render.calls == ["print"]
    assert "email fallback skipped: no email provider configured" in store.row(
        row["delivery_id"])["reason"]
    step.close()


def test_an_outage_is_tried_again_after_a_back_off(store, monkeypatch):  # noqa: F811
    render = Refusing(Unavailable("e-archive unavailable"))
    step, row = fallbacks(store, render)
    now = [1000.0]
    monkeypatch.setattr(fallback_module.time, "monotonic", lambda: now[0])
    step._run(row)  # as the pool runs it
    assert render.calls == ["email"]
    unchanged = store.row(row["delivery_id"])
    assert unchanged["fallbacks"] == "email,print" and unchanged["reason"] == "HTTP 400"
    step.submit(row)  # the next housekeeping round, before the back-off passed
    assert row["delivery_id"] not in step._running
    now[0] += RETRY_SECONDS * 0.99
    step.submit(row)
    assert row["delivery_id"] not in step._running
    step._run(row)  # a second outage doubles the wait
    assert step._waiting[row["delivery_id"]] == (2, now[0] + 2 * RETRY_SECONDS)
    render.error = InvalidInput("refused")
    now[0] += 2 * RETRY_SECONDS
    step.submit(row)
    step.close()  # waits for the submitted run
    assert render.calls == ["email", "email", "email", "print"]
    assert row["delivery_id"] not in step._waiting
    assert store.row(row["delivery_id"])["fallbacks"] == ""


def test_an_unreadable_sealed_input_is_tried_again(store):  # noqa: F811
    """A server without the key its peers seal with: the operator adds it; nothing lost."""
    step, row = fallbacks(store, Refusing(InvalidInput("never reached")))
    step.sealed = SealedInputs(MultiFernet([Fernet(Fernet.generate_key())]))  # another key
    with pytest.raises(ValueError, match="no configured key"):
        step.fall_back(row)
    assert store.row(row["delivery_id"])["fallbacks"] == "email,print"
    step.close()
