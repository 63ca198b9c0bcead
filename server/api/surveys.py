"""`kanal.v1.Surveys`: proto <-> `server.surveys.service.SurveyService` only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import grpc

from kanal.v1 import surveys_pb2, surveys_pb2_grpc
from server.api.convert import channels_from_proto, timestamp
from server.auth import current_caller
from server.errors import InvalidInput
from server.surveys import stats
from server.surveys.reports import ReportRow
from server.surveys.service import SurveyService
from server.surveys.store import Answer


def answer_to_proto(answer: Answer) -> surveys_pb2.SurveyResponse:
    inv, follow_up = answer.invitation, answer.follow_up
    return surveys_pb2.SurveyResponse(
        invitation_id=inv["invitation_id"], customer_id=inv["customer_id"],
        survey_id=inv["survey_id"], touchpoint=inv["touchpoint"], score=answer.score,
        category=stats.category(answer.score), channel=answer.channel,
        at=timestamp(answer.at), variant=inv["variant"],
        follow_up_id=follow_up["follow_up_id"] if follow_up else "",
        follow_up_deadline=timestamp(follow_up["deadline"]) if follow_up else None)


def follow_up_to_proto(row: Mapping[str, Any]) -> surveys_pb2.FollowUp:
    return surveys_pb2.FollowUp(
        follow_up_id=row["follow_up_id"], customer_id=row["customer_id"],
        invitation_id=row["invitation_id"], survey_id=row["survey_id"],
        touchpoint=row["touchpoint"], score=row["score"], comment=row["comment"],
        created_at=timestamp(row["created_at"]), deadline=timestamp(row["deadline"]),
        closed_at=timestamp(row["closed_at"]), note=row["note"])


def _row(row: ReportRow) -> surveys_pb2.SurveyReportRow:
    return surveys_pb2.SurveyReportRow(
        touchpoint=row.touchpoint, period=row.period, invited=row.invited,
        responded=row.responded, response_rate=row.response_rate, promoters=row.promoters,
        passives=row.passives, detractors=row.detractors, nps=row.nps)


def _rate(rate: stats.Rate) -> surveys_pb2.Rate:
    return surveys_pb2.Rate(successes=rate.successes, trials=rate.trials, rate=rate.rate,
                            low=rate.low, high=rate.high)


def _time(message: Any, field: str) -> datetime | None:
    """A Timestamp field as an aware datetime, None when unset."""
    if not message.HasField(field):
        return None
    try:
        return getattr(message, field).ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:  # seconds or nanos out of Timestamp's range
        raise InvalidInput.field(field, "is not a timestamp within 0001-01-01..9999-12-31"
                                 ) from exc


class SurveysServicer(surveys_pb2_grpc.SurveysServicer):
    def __init__(self, service: SurveyService):
        self.service = service

    def SendSurvey(self, request: surveys_pb2.SendSurveyRequest,
                   context: grpc.ServicerContext) -> surveys_pb2.SendSurveyResponse:
        sent = self.service.send(
            current_caller().tenant, request.survey_id, request.touchpoint, request.data_json,
            touchpoint_ref=request.touchpoint_ref,
            channels=channels_from_proto(list(request.channels)),
            idempotency_key=request.idempotency_key or None,
            experiment_id=request.experiment_id)
        return surveys_pb2.SendSurveyResponse(
            invitation_id=sent.invitation_id, document_id=sent.document_id,
            expires_at=timestamp(sent.expires_at), variant=sent.variant,
            replayed=sent.replayed, suppressed=bool(sent.suppressed),
            suppressed_reason=sent.suppressed)

    def RecordResponse(self, request: surveys_pb2.RecordResponseRequest,
                       context: grpc.ServicerContext) -> surveys_pb2.SurveyResponse:
        return answer_to_proto(self.service.record_link(
            request.token, request.score, request.comment, tenant=current_caller().tenant,
            customer_id=request.customer_id, channel="api"))

    def RecordSmsReply(self, request: surveys_pb2.RecordSmsReplyRequest,
                       context: grpc.ServicerContext) -> surveys_pb2.SurveyResponse:
        return answer_to_proto(self.service.record_sms(
            current_caller().tenant, request.from_msisdn, request.text,
            _time(request, "received_at")))

    def GetSurveyReport(self, request: surveys_pb2.GetSurveyReportRequest,
                        context: grpc.ServicerContext) -> surveys_pb2.SurveyReport:
        report = self.service.report(
            current_caller().tenant, survey_id=request.survey_id,
            touchpoint=request.touchpoint,
            start=_time(request, "from"), end=_time(request, "to"), period=request.period)
        return surveys_pb2.SurveyReport(
            rows=[_row(r) for r in report.rows], total=_row(report.total),
            overdue_follow_ups=[follow_up_to_proto(f) for f in report.overdue],
            open_follow_ups=report.open_follow_ups)

    def CloseFollowUp(self, request: surveys_pb2.CloseFollowUpRequest,
                      context: grpc.ServicerContext) -> surveys_pb2.FollowUp:
        caller = current_caller()
        return follow_up_to_proto(self.service.close_follow_up(
            caller.tenant, request.follow_up_id, caller.key_id, request.note))

    def RecordConversion(self, request: surveys_pb2.RecordConversionRequest,
                         context: grpc.ServicerContext
                         ) -> surveys_pb2.RecordConversionResponse:
        attributed, variant, replayed = self.service.record_conversion(
            current_caller().tenant, request.experiment_id, request.customer_id,
            request.event_type,
            _time(request, "occurred_at"))
        return surveys_pb2.RecordConversionResponse(attributed=attributed, variant=variant,
                                                    replayed=replayed)

    def GetExperimentReport(self, request: surveys_pb2.GetExperimentReportRequest,
                            context: grpc.ServicerContext) -> surveys_pb2.ExperimentReport:
        variants = self.service.experiment_report(current_caller().tenant,
                                                  request.experiment_id)
        return surveys_pb2.ExperimentReport(
            experiment_id=request.experiment_id, confidence=stats.CONFIDENCE, variants=[
                surveys_pb2.VariantReport(
                    variant=v.variant, weight=v.weight, exposed=v.exposed,
                    conversion=_rate(v.conversion), response=_rate(v.response),
                    promoters=_rate(v.promoters), detractors=_rate(v.detractors), nps=v.nps)
                for v in variants])
