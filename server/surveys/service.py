"""`SurveyService`: the survey stage's one entry point (gRPC, the response page, journeys).

    send: the contact policy (server.journeys.policy: survey opt-outs, the survey cap, one
          a day, priorities; suppressed: recorded, nothing sent, the answer says why; else
          counted in `contact_log`, so journeys' caps see it)
          -> invitation row (id, expiry, reply code, variant) -> signed link -> the layout's
          data with `response` filled in -> DocumentService.compose (the normal path:
          channel plan, archive, delivery outbox) -> the invitation notes its document
    record (link, API or SMS): token -> invitation (binding, tenant, customer checked)
          -> one transaction: the link is used (compare-and-set), the answer, and for a
          detractor the follow-up with its deadline and the webhook row -> hook
    report: NPS per touchpoint and period, response rate, overdue follow-ups
    experiments: variant per customer, exposures, conversions, rates with intervals

The invitation row is written before the document: a crash in between leaves an
invitation without a document (never sent, never answerable by anyone who did not get
it), never a sent link without its invitation. A retry with the same idempotency key finds
the invitation and composes with the same key, which the document stage replays.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from ulid import ULID

from server import logs
from server.compose.model import Channel
from server.compose.variants import assign
from server.documents import ComposeInput, DocumentService
from server.errors import (
    FailedPrecondition,
    InvalidInput,
    NotFound,
    PermissionDenied,
    quote,
)
from server.journeys.policy import ContactPolicy, ContactRequest
from server.surveys import hooks, stats
from server.surveys.links import LinkSigner, binding
from server.surveys.replies import MAX_COMMENT, parse_reply
from server.surveys.reports import Report, VariantRates, experiment_report, survey_report
from server.surveys.settings import Survey, SurveySettings
from server.surveys.store import AlreadyAnswered, Answer, Expired, SurveyStore, follow_up_body
from server.tokens import TokenError

log = logs.get_logger(__name__)
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # as the layouts' `customer.mobile`


class LinkExpired(FailedPrecondition):
    """The response link is past its expiry (the page says so; gRPC FAILED_PRECONDITION)."""


class LinkUsed(FailedPrecondition):
    """The response link was already used (HTTP 409; gRPC FAILED_PRECONDITION)."""


class LinkInvalid(NotFound):
    """Not a link Kanal made, or not for this tenant (NOT_FOUND: no existence leaks)."""


@dataclass(frozen=True, slots=True)
class Sent:
    """A survey sent, or (`suppressed`: the contact policy's reason) not: then no
    invitation, document or expiry."""

    invitation_id: str
    document_id: str
    expires_at: datetime | None
    variant: str
    replayed: bool
    suppressed: str = ""


class SurveyService:
    def __init__(self, settings: SurveySettings, store: SurveyStore, signer: LinkSigner,
                 documents: DocumentService | None, public_url: str, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 on_follow_up: Callable[[], None] = lambda: None):
        self.settings = settings
        self.store = store
        self.signer = signer
        self.documents = documents
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self.on_follow_up = on_follow_up  # wakes the webhook sender
        self.on_event: hooks.EventHook = hooks.no_events  # the server sets server.events'
        # the contact policy every communication goes through (server.journeys.policy: opt-outs,
        # the survey cap, one a day, priorities); the server sets the journeys' one
        self.policy: ContactPolicy | None = None

    # --- sending -------------------------------------------------------------------------

    def survey(self, survey_id: str) -> Survey:
        survey = self.settings.survey(survey_id)
        if survey is None:
            raise InvalidInput.field("survey_id", f"no survey {quote(survey_id)} is configured "
                                     "([surveys.surveys.<id>])")
        return survey

    def link(self, token: str) -> str:
        if not self.public_url:
            raise FailedPrecondition("survey links need [surveys] public_url (or listen)")
        return f"{self.public_url}/r/{token}"

    def send(self, tenant: str, survey_id: str, touchpoint: str, data_json: str, *,
             touchpoint_ref: str = "", channels: tuple[Channel, ...] = (),
             idempotency_key: str | None = None, experiment_id: str = "") -> Sent:
        """Invite one customer: see the module docstring. `data_json`: the nps-survey
        layout's data without `response` (InvalidInput naming the JSON path otherwise)."""
        if self.documents is None:
            raise FailedPrecondition("this server composes no documents")
        survey = self.survey(survey_id)
        if not touchpoint or len(touchpoint) > 64:
            raise InvalidInput.field("touchpoint", "is required, at most 64 characters")
        if len(touchpoint_ref) > 200:
            raise InvalidInput.field("touchpoint_ref", "at most 200 characters")
        try:
            data = json.loads(data_json)
        except ValueError as exc:
            raise InvalidInput.field("data_json", f"is not JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("customer"), dict):
            raise InvalidInput.field("$.customer", "the nps-survey data needs a customer")
        if "response" in data:
            raise InvalidInput.field("$.response", "is filled in by Kanal; leave it out")
        customer_id = str(data["customer"].get("customer_id") or "")
        if not customer_id:
            raise InvalidInput.field("$.customer.customer_id", "is required")
        for key in ("sender", "survey"):  # read here, before the layout's schema sees them
            if data.get(key) is not None and not isinstance(data[key], dict):
                raise InvalidInput.field(f"$.{key}", "must be a JSON object")
        if idempotency_key:
            existing = self.store.by_key(tenant, idempotency_key)
            if existing is not None:
                return self._resend(existing, data, idempotency_key, channels)
        variant = ""
        if experiment_id:
            experiment = self.settings.experiments.get(experiment_id)
            if experiment is None:
                raise InvalidInput.field("experiment_id", f"no experiment "
                                         f"{quote(experiment_id)} is configured")
            variant = assign(tenant, customer_id, experiment_id, experiment.variants)
        now = self.clock()
        invitation_id = str(ULID())
        contact = ContactRequest(tenant, customer_id, "survey", f"survey:{touchpoint}")
        invitation = {
            "invitation_id": invitation_id, "tenant": tenant, "customer_id": customer_id,
            "survey_id": survey.survey_id, "touchpoint": touchpoint,
            "touchpoint_ref": touchpoint_ref, "locale": str(data.get("locale", "")),
            "sender_name": str((data.get("sender") or {}).get("name", ""))[:80],
            "document_id": "", "mobile": str(data["customer"].get("mobile") or ""),
            "reply_code": survey.reply_code, "experiment_id": experiment_id,
            "variant": variant, "idempotency_key": idempotency_key or None,
            "created_at": now, "expires_at": now + timedelta(days=survey.link_days),
            "responded_at": None,
        }
        # Counted only once nothing about the request can fail before `_compose`, whose
        # failure takes the count back: a refused survey never uses up the customer's cap.
        if self.policy is not None:
            decision = self.policy.check_and_record(contact, now, ref=invitation_id,
                                                    can_wait=False)
            if decision.action == "suppress":
                log.info("survey suppressed", survey=survey.survey_id, reason=decision.reason)
                return Sent("", "", None, variant, False, suppressed=decision.reason)
        try:
            self.store.add_invitation(invitation)
        except IntegrityError:  # a concurrent retry with the same key won
            self._not_sent(contact, invitation_id)
            existing = self.store.by_key(tenant, idempotency_key or "")
            if existing is None:
                raise
            return self._resend(existing, data, idempotency_key or "", channels)
        try:
            return self._compose(invitation, data, idempotency_key, channels, replayed=False)
        except Exception:
            # Nothing was sent (bad data, archive down): no invitation to count or answer.
            self.store.discard_unsent(invitation["invitation_id"])
            self._not_sent(contact, invitation_id)
            raise

    def _not_sent(self, contact: ContactRequest, invitation_id: str) -> None:
        if self.policy is not None:
            self.policy.forget(contact, invitation_id)

    def _resend(self, invitation: Mapping[str, Any], data: dict[str, Any], key: str,
                channels: tuple[Channel, ...]) -> Sent:
        if invitation["customer_id"] != str(data["customer"].get("customer_id")):
            raise InvalidInput.field("idempotency_key", "was used for another customer")
        return self._compose(invitation, data, key, channels, replayed=True)

    def _compose(self, invitation: Mapping[str, Any], data: dict[str, Any], key: str | None,
                 channels: tuple[Channel, ...], *, replayed: bool) -> Sent:
        survey = self.survey(invitation["survey_id"])
        expires_at = invitation["expires_at"]
        created = invitation["created_at"]
        token = self.signer.sign(
            invitation["invitation_id"],
            binding(invitation["tenant"], invitation["customer_id"], invitation["survey_id"],
                    invitation["touchpoint"]),
            int((expires_at - created).total_seconds()), now=created.timestamp())
        data = {**data, "survey": {**(data.get("survey") or {}),
                                   "survey_id": invitation["survey_id"],
                                   "touchpoint": invitation["touchpoint"]},
                "response": {"url": self.link(token), "reply_code": survey.reply_code,
                             "reply_number": survey.reply_number,
                             "expires": expires_at.date().isoformat()}}
        assert self.documents is not None
        result = self.documents.compose(ComposeInput(
            tenant=invitation["tenant"], layout_id=self.settings.layout,
            data=json.dumps(data, ensure_ascii=False), channels=channels,
            idempotency_key=key or f"survey-invitation:{invitation['invitation_id']}"))
        if not invitation["document_id"]:
            self.store.set_document(invitation["invitation_id"], result.document_id,
                                    getattr(result, "locale", ""))
        if invitation["experiment_id"]:
            self.store.expose_now(invitation["tenant"], invitation["experiment_id"],
                                  invitation["customer_id"], invitation["variant"],
                                  invitation["created_at"], result.document_id)
        log.info("survey sent", survey=invitation["survey_id"],
                 invitation=invitation["invitation_id"], document_id=result.document_id)
        return Sent(invitation["invitation_id"], result.document_id, expires_at,
                    invitation["variant"], replayed or result.replayed)

    # --- answering -----------------------------------------------------------------------

    def invitation_for_token(self, token: str, tenant: str | None = None) -> Mapping[str, Any]:
        """The invitation a link's token answers: LinkInvalid (unknown, forged, another
        tenant's), LinkExpired."""
        now = self.clock()
        try:
            claims = self.signer.read(token, now.timestamp())
        except TokenError as exc:
            if str(exc) == "expired":
                raise LinkExpired("this response link has expired") from exc
            raise LinkInvalid(f"not a valid response link ({exc})") from exc
        invitation = self.store.invitation(claims.invitation_id)
        if invitation is None or (tenant is not None and invitation["tenant"] != tenant):
            raise LinkInvalid("not a valid response link")
        if binding(invitation["tenant"], invitation["customer_id"], invitation["survey_id"],
                   invitation["touchpoint"]) != claims.binding:
            raise LinkInvalid("the response link does not belong to this invitation")
        if invitation["responded_at"] is not None:
            raise LinkUsed("this response link was already used; an answer is given once")
        if invitation["expires_at"] <= now:
            raise LinkExpired("this response link has expired")
        return invitation

    def record_link(self, token: str, score: int, comment: str = "", *,
                    tenant: str | None = None, customer_id: str = "",
                    channel: str = "link") -> Answer:
        """The answer given with a link's token (the page, or a caller acting for
        `customer_id`: another customer's token is PERMISSION_DENIED)."""
        invitation = self.invitation_for_token(token, tenant)
        if customer_id and customer_id != invitation["customer_id"]:
            raise PermissionDenied("this response link belongs to another customer")
        return self._record(invitation, score, comment, channel)

    def record_sms(self, tenant: str | None, from_msisdn: str, text: str,
                   received_at: datetime | None = None) -> Answer:
        """An inbound SMS: the reply code names the survey, the sender's number the
        invitation (the newest open one sent to it with that code)."""
        reply = parse_reply(text)
        survey = self.settings.survey_by_code(reply.code)
        if survey is None:
            raise InvalidInput.field("text", f"no survey has the reply code {quote(reply.code)}")
        if not from_msisdn.startswith("+"):
            from_msisdn = "+" + from_msisdn.lstrip("0")
        if not _E164.fullmatch(from_msisdn):
            raise InvalidInput.field("from_msisdn", f"{quote(from_msisdn)} is not a mobile "
                                     "number in E.164 form (+ country code and number)")
        invitation = self.store.latest_for_sms(tenant, from_msisdn, survey.reply_code,
                                               received_at or self.clock())
        if invitation is None:
            raise FailedPrecondition(f"no open {survey.reply_code} survey was sent to this "
                                     "number (answered, expired or never sent)")
        return self._record(invitation, reply.score, reply.comment, "sms")

    def inbound_sms(self, from_msisdn: str, text: str) -> None:
        """A customer's SMS from the SMSC (server.delivery.providers.smpp hands every
        mobile-originated message here). An SMSC account is not a tenant's: the newest
        open invitation sent to that number with that reply code, of any tenant, is the
        one answered. Text that answers no survey is logged (without the text) and
        dropped; a failure to record raises, so the SMSC delivers it again."""
        try:
            answer = self.record_sms(None, from_msisdn, text)
        except (InvalidInput, FailedPrecondition) as exc:
            log.info("inbound SMS answers no survey", why=type(exc).__name__)
            return
        log.info("inbound SMS answer", invitation=answer.invitation["invitation_id"])

    def _record(self, invitation: Mapping[str, Any], score: int, comment: str,
                channel: str) -> Answer:
        if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
            raise InvalidInput.field("score", f"must be 0..10, got {quote(score)}")
        comment = (comment or "").strip()
        if len(comment) > MAX_COMMENT:
            raise InvalidInput.field("comment", f"at most {MAX_COMMENT} characters")
        now = self.clock()
        follow_up = None
        if stats.is_detractor(score):
            hours = self.survey(invitation["survey_id"]).follow_up_hours
            follow_up = {
                "follow_up_id": str(ULID()), "tenant": invitation["tenant"],
                "customer_id": invitation["customer_id"],
                "invitation_id": invitation["invitation_id"],
                "survey_id": invitation["survey_id"], "touchpoint": invitation["touchpoint"],
                "score": score, "comment": comment, "created_at": now,
                "deadline": now + timedelta(hours=hours), "closed_at": None,
                "closed_by": "", "note": "",
            }
        try:
            answer = self.store.answer(invitation, score, comment, channel, now, follow_up)
        except AlreadyAnswered as exc:
            raise LinkUsed("this survey was already answered; an answer is given once") from exc
        except Expired as exc:
            raise LinkExpired("this response link has expired") from exc
        log.info("survey answered", survey=invitation["survey_id"], channel=channel,
                 category=stats.category(score))
        if follow_up is not None:
            self.on_follow_up()
        self._raise_events(invitation, score, comment, now, follow_up)
        return answer

    def _raise_events(self, invitation: Mapping[str, Any], score: int, comment: str,
                      now: datetime, follow_up: Mapping[str, Any] | None) -> None:
        """`survey_response`, and `follow_up_required` for a detractor (server.surveys.hooks)."""
        tenant, customer = invitation["tenant"], invitation["customer_id"]
        answered = {"survey_id": invitation["survey_id"], "touchpoint": invitation["touchpoint"],
                    "score": score, **({"comment": comment} if comment else {}),
                    **({"document_id": invitation["document_id"]}
                       if invitation.get("document_id") else {})}
        raised = [("survey_response", answered, f"survey-response:{invitation['invitation_id']}")]
        if follow_up is not None:
            body = follow_up_body(follow_up, invitation)
            raised.append(("follow_up_required", {
                **answered, "follow_up_id": body["follow_up_id"], "deadline": body["deadline"]},
                f"follow-up:{body['follow_up_id']}"))
        for event_type, data, key in raised:
            try:
                self.on_event(tenant, customer, event_type, data, now, key)
            except Exception as exc:  # the answer stands; the webhook still carries it
                log.warning("survey event not raised", event_type=event_type, error=repr(exc))

    def close_follow_up(self, tenant: str, follow_up_id: str, who: str, note: str = ""
                        ) -> Mapping[str, Any]:
        if not follow_up_id:
            raise InvalidInput.field("follow_up_id", "is required")
        if len(note) > MAX_COMMENT:
            raise InvalidInput.field("note", f"at most {MAX_COMMENT} characters")
        row = self.store.close_follow_up(tenant, follow_up_id, who, note, self.clock())
        if row is None:
            raise NotFound(f"no follow-up {quote(follow_up_id)}")
        return row

    # --- reports -------------------------------------------------------------------------

    def report(self, tenant: str, *, survey_id: str = "", touchpoint: str = "",
               start: datetime | None = None, end: datetime | None = None,
               period: str = "month") -> Report:
        """See `server.surveys.reports.survey_report`."""
        return survey_report(self.store, tenant, self.clock(), survey_id=survey_id,
                             touchpoint=touchpoint, start=start, end=end, period=period)

    # --- experiments ---------------------------------------------------------------------

    def variant(self, tenant: str, customer_id: str, experiment_id: str) -> str:
        """A journey step's variant for this customer (deterministic, weights from
        `[surveys.experiments.<id>]`)."""
        experiment = self.settings.experiments.get(experiment_id)
        if experiment is None:
            raise InvalidInput.field("experiment_id", f"no experiment {quote(experiment_id)}")
        return assign(tenant, customer_id, experiment_id, experiment.variants)

    def record_conversion(self, tenant: str, experiment_id: str, customer_id: str,
                          event_type: str, at: datetime | None = None
                          ) -> tuple[bool, str, bool]:
        """-> (attributed, variant, replayed). Counted for the variant the customer was
        exposed to; a customer never exposed is not counted (attributed False)."""
        for name, value in (("experiment_id", experiment_id), ("customer_id", customer_id),
                            ("event_type", event_type)):
            if not value:
                raise InvalidInput.field(name, "is required")
        variant = self.store.exposure(tenant, experiment_id, customer_id)
        if variant is None:
            return False, "", False
        new = self.store.convert(tenant, experiment_id, customer_id, event_type, variant,
                                 at or self.clock())
        return True, variant, not new

    def conversion_from_event(self, tenant: str, customer_id: str, event_type: str,
                              occurred_at: datetime) -> None:
        """For the events stage: an accepted event counts as a conversion of every
        experiment that lists its type (`conversion_events`)."""
        for experiment in self.settings.experiments.values():
            if event_type in experiment.conversion_events:
                self.record_conversion(tenant, experiment.experiment_id, customer_id,
                                       event_type, occurred_at)

    def experiment_report(self, tenant: str, experiment_id: str) -> list[VariantRates]:
        """See `server.surveys.reports.experiment_report`."""
        return experiment_report(self.store, self.settings, tenant, experiment_id)
