import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kanal.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SendSurveyRequest(_message.Message):
    __slots__ = ("survey_id", "touchpoint", "touchpoint_ref", "data_json", "channels", "idempotency_key", "experiment_id")
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    TOUCHPOINT_FIELD_NUMBER: _ClassVar[int]
    TOUCHPOINT_REF_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    survey_id: str
    touchpoint: str
    touchpoint_ref: str
    data_json: str
    channels: _containers.RepeatedScalarFieldContainer[_common_pb2.Channel]
    idempotency_key: str
    experiment_id: str
    def __init__(self, survey_id: _Optional[str] = ..., touchpoint: _Optional[str] = ..., touchpoint_ref: _Optional[str] = ..., data_json: _Optional[str] = ..., channels: _Optional[_Iterable[_Union[_common_pb2.Channel, str]]] = ..., idempotency_key: _Optional[str] = ..., experiment_id: _Optional[str] = ...) -> None: ...

class SendSurveyResponse(_message.Message):
    __slots__ = ("invitation_id", "document_id", "expires_at", "variant", "replayed", "suppressed", "suppressed_reason")
    INVITATION_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_REASON_FIELD_NUMBER: _ClassVar[int]
    invitation_id: str
    document_id: str
    expires_at: _timestamp_pb2.Timestamp
    variant: str
    replayed: bool
    suppressed: bool
    suppressed_reason: str
    def __init__(self, invitation_id: _Optional[str] = ..., document_id: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., variant: _Optional[str] = ..., replayed: _Optional[bool] = ..., suppressed: _Optional[bool] = ..., suppressed_reason: _Optional[str] = ...) -> None: ...

class RecordResponseRequest(_message.Message):
    __slots__ = ("token", "score", "comment", "customer_id")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    token: str
    score: int
    comment: str
    customer_id: str
    def __init__(self, token: _Optional[str] = ..., score: _Optional[int] = ..., comment: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class SurveyResponse(_message.Message):
    __slots__ = ("invitation_id", "customer_id", "survey_id", "touchpoint", "score", "category", "channel", "at", "follow_up_id", "follow_up_deadline", "variant")
    INVITATION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    TOUCHPOINT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UP_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UP_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    invitation_id: str
    customer_id: str
    survey_id: str
    touchpoint: str
    score: int
    category: str
    channel: str
    at: _timestamp_pb2.Timestamp
    follow_up_id: str
    follow_up_deadline: _timestamp_pb2.Timestamp
    variant: str
    def __init__(self, invitation_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., survey_id: _Optional[str] = ..., touchpoint: _Optional[str] = ..., score: _Optional[int] = ..., category: _Optional[str] = ..., channel: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., follow_up_id: _Optional[str] = ..., follow_up_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., variant: _Optional[str] = ...) -> None: ...

class RecordSmsReplyRequest(_message.Message):
    __slots__ = ("from_msisdn", "text", "received_at")
    FROM_MSISDN_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    from_msisdn: str
    text: str
    received_at: _timestamp_pb2.Timestamp
    def __init__(self, from_msisdn: _Optional[str] = ..., text: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetSurveyReportRequest(_message.Message):
    __slots__ = ("survey_id", "touchpoint", "to", "period")
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    TOUCHPOINT_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    survey_id: str
    touchpoint: str
    to: _timestamp_pb2.Timestamp
    period: str
    def __init__(self, survey_id: _Optional[str] = ..., touchpoint: _Optional[str] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period: _Optional[str] = ..., **kwargs) -> None: ...

class SurveyReportRow(_message.Message):
    __slots__ = ("touchpoint", "period", "invited", "responded", "response_rate", "promoters", "passives", "detractors", "nps")
    TOUCHPOINT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    INVITED_FIELD_NUMBER: _ClassVar[int]
    RESPONDED_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_RATE_FIELD_NUMBER: _ClassVar[int]
    PROMOTERS_FIELD_NUMBER: _ClassVar[int]
    PASSIVES_FIELD_NUMBER: _ClassVar[int]
    DETRACTORS_FIELD_NUMBER: _ClassVar[int]
    NPS_FIELD_NUMBER: _ClassVar[int]
    touchpoint: str
    period: str
    invited: int
    responded: int
    response_rate: float
    promoters: int
    passives: int
    detractors: int
    nps: float
    def __init__(self, touchpoint: _Optional[str] = ..., period: _Optional[str] = ..., invited: _Optional[int] = ..., responded: _Optional[int] = ..., response_rate: _Optional[float] = ..., promoters: _Optional[int] = ..., passives: _Optional[int] = ..., detractors: _Optional[int] = ..., nps: _Optional[float] = ...) -> None: ...

class FollowUp(_message.Message):
    __slots__ = ("follow_up_id", "customer_id", "invitation_id", "survey_id", "touchpoint", "score", "comment", "created_at", "deadline", "closed_at", "note")
    FOLLOW_UP_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    INVITATION_ID_FIELD_NUMBER: _ClassVar[int]
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    TOUCHPOINT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    follow_up_id: str
    customer_id: str
    invitation_id: str
    survey_id: str
    touchpoint: str
    score: int
    comment: str
    created_at: _timestamp_pb2.Timestamp
    deadline: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    note: str
    def __init__(self, follow_up_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., invitation_id: _Optional[str] = ..., survey_id: _Optional[str] = ..., touchpoint: _Optional[str] = ..., score: _Optional[int] = ..., comment: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ...) -> None: ...

class SurveyReport(_message.Message):
    __slots__ = ("rows", "total", "overdue_follow_ups", "open_follow_ups")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_FOLLOW_UPS_FIELD_NUMBER: _ClassVar[int]
    OPEN_FOLLOW_UPS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[SurveyReportRow]
    total: SurveyReportRow
    overdue_follow_ups: _containers.RepeatedCompositeFieldContainer[FollowUp]
    open_follow_ups: int
    def __init__(self, rows: _Optional[_Iterable[_Union[SurveyReportRow, _Mapping]]] = ..., total: _Optional[_Union[SurveyReportRow, _Mapping]] = ..., overdue_follow_ups: _Optional[_Iterable[_Union[FollowUp, _Mapping]]] = ..., open_follow_ups: _Optional[int] = ...) -> None: ...

class CloseFollowUpRequest(_message.Message):
    __slots__ = ("follow_up_id", "note")
    FOLLOW_UP_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    follow_up_id: str
    note: str
    def __init__(self, follow_up_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class RecordConversionRequest(_message.Message):
    __slots__ = ("experiment_id", "customer_id", "event_type", "occurred_at")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    customer_id: str
    event_type: str
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, experiment_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., event_type: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordConversionResponse(_message.Message):
    __slots__ = ("attributed", "variant", "replayed")
    ATTRIBUTED_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    attributed: bool
    variant: str
    replayed: bool
    def __init__(self, attributed: _Optional[bool] = ..., variant: _Optional[str] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetExperimentReportRequest(_message.Message):
    __slots__ = ("experiment_id",)
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    def __init__(self, experiment_id: _Optional[str] = ...) -> None: ...

class Rate(_message.Message):
    __slots__ = ("successes", "trials", "rate", "low", "high")
    SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    successes: int
    trials: int
    rate: float
    low: float
    high: float
    def __init__(self, successes: _Optional[int] = ..., trials: _Optional[int] = ..., rate: _Optional[float] = ..., low: _Optional[float] = ..., high: _Optional[float] = ...) -> None: ...

class VariantReport(_message.Message):
    __slots__ = ("variant", "weight", "exposed", "conversion", "response", "promoters", "detractors", "nps")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    EXPOSED_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    PROMOTERS_FIELD_NUMBER: _ClassVar[int]
    DETRACTORS_FIELD_NUMBER: _ClassVar[int]
    NPS_FIELD_NUMBER: _ClassVar[int]
    variant: str
    weight: float
    exposed: int
    conversion: Rate
    response: Rate
    promoters: Rate
    detractors: Rate
    nps: float
    def __init__(self, variant: _Optional[str] = ..., weight: _Optional[float] = ..., exposed: _Optional[int] = ..., conversion: _Optional[_Union[Rate, _Mapping]] = ..., response: _Optional[_Union[Rate, _Mapping]] = ..., promoters: _Optional[_Union[Rate, _Mapping]] = ..., detractors: _Optional[_Union[Rate, _Mapping]] = ..., nps: _Optional[float] = ...) -> None: ...

class ExperimentReport(_message.Message):
    __slots__ = ("experiment_id", "variants", "confidence")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    variants: _containers.RepeatedCompositeFieldContainer[VariantReport]
    confidence: float
    def __init__(self, experiment_id: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[VariantReport, _Mapping]]] = ..., confidence: _Optional[float] = ...) -> None: ...
