"""An SMS answer through a gateway the tenants share names no tenant: its invitation is
found by number and reply code (`ix_survey_invitations_reply`), not by reading every
invitation ever sent; a database made before the index gets it on start. Figures:
load_tests/bench_history_queries.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, insert

from server.surveys.store import SurveyStore
from server.surveys.tables import survey_invitations
from tests.unit.query_plans import assert_added_on_start, plans_of

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def invitation(n: int, tenant: str, mobile: str, responded: bool) -> dict:
    return dict(invitation_id=f"{n:026d}", tenant=tenant, customer_id=f"c{n}",
                survey_id="nps", touchpoint="invoice", touchpoint_ref="", locale="nb",
                sender_name="", document_id=f"d{n}", mobile=mobile, reply_code="NPS",
                experiment_id="", variant="", idempotency_key=None,
                created_at=NOW - timedelta(days=1) + timedelta(seconds=n),
                expires_at=NOW + timedelta(days=1), responded_at=NOW if responded else None)


def test_an_sms_answer_naming_no_tenant_finds_its_invitation_by_number(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    store = SurveyStore(engine)
    store.create_schema()
    with engine.begin() as conn:
        conn.execute(insert(survey_invitations), [
            invitation(n, f"t{n % 3}", f"+47{n:08d}", True) for n in range(3000)])
        conn.execute(insert(survey_invitations), [invitation(9000, "t2", "+4700000007", False)])
    found = store.latest_for_sms(None, "+4700000007", "NPS", NOW)
    assert found is not None and found["invitation_id"] == f"{9000:026d}"
    plan = plans_of(engine, lambda: store.latest_for_sms(None, "+4700000007", "NPS", NOW),
                    "FROM survey_invitations")
    assert "ix_survey_invitations_reply" in plan and "SCAN" not in plan
    engine.dispose()


def test_a_database_made_before_the_index_gets_it_on_start(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    store = SurveyStore(engine)
    store.create_schema()
    assert_added_on_start(engine, store.create_schema, "survey_invitations",
                          "ix_survey_invitations_reply")
    engine.dispose()
