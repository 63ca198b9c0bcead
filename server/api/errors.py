"""Domain errors -> gRPC status codes, with `google.rpc` details naming the fields.

One table decides the status of every `KanalError`; an `InvalidInput` also carries a
`google.rpc.BadRequest` with one field violation per problem, so a client can show
exactly which field of its data was wrong and why; a `FailedPrecondition` that names
fields carries a `google.rpc.PreconditionFailure` (subject: the field). An `Overloaded` carries a
`google.rpc.RetryInfo` and the `grpc-retry-pushback-ms` trailer (gRPC's retry design A6),
so clients know when to come back.

Whatever an error says, the status stays small: gRPC clients refuse trailers over 8 KB
(and answer RESOURCE_EXHAUSTED instead of the error), so the message is cut to
MAX_MESSAGE_CHARS and the field violations to MAX_DETAIL_BYTES, with a last violation
saying how many were left out.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from server import errors

STATUS_CODES: dict[type[errors.KanalError], grpc.StatusCode] = {
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.Conflict: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.DataLoss: grpc.StatusCode.DATA_LOSS,
}


def status_code(error: errors.KanalError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return grpc.StatusCode.INTERNAL


MAX_MESSAGE_CHARS = 400
MAX_DETAIL_BYTES = 3000
_FIELD_CHARS, _DESCRIPTION_CHARS = 200, 300
RETRY_PUSHBACK_HEADER = "grpc-retry-pushback-ms"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bad_request(violations: list[errors.FieldViolation]) -> error_details_pb2.BadRequest:
    bad_request = error_details_pb2.BadRequest()
    for n, v in enumerate(violations):
        entry = error_details_pb2.BadRequest.FieldViolation(
            field=_cut(v.field, _FIELD_CHARS), description=_cut(v.description, _DESCRIPTION_CHARS))
        if bad_request.ByteSize() + entry.ByteSize() > MAX_DETAIL_BYTES:
            bad_request.field_violations.add(
                field="", description=f"and {len(violations) - n} more violations")
            break
        bad_request.field_violations.append(entry)
    return bad_request


def _precondition_failure(kind: str, violations: list[errors.FieldViolation]
                          ) -> error_details_pb2.PreconditionFailure:
    """A FailedPrecondition's violations: type `kind`, subject the field (a few at most)."""
    return error_details_pb2.PreconditionFailure(violations=[
        error_details_pb2.PreconditionFailure.Violation(
            type=kind, subject=_cut(v.field, _FIELD_CHARS),
            description=_cut(v.description, _DESCRIPTION_CHARS))
        for v in violations[:10]])


def to_status(error: errors.KanalError) -> grpc.Status:
    code = status_code(error)
    status = status_pb2.Status(code=code.value[0], message=_cut(str(error), MAX_MESSAGE_CHARS))
    if isinstance(error, errors.InvalidInput) and error.violations:
        detail = any_pb2.Any()
        detail.Pack(_bad_request(error.violations))
        status.details.append(detail)
    if isinstance(error, errors.FailedPrecondition) and error.violations:
        detail = any_pb2.Any()
        detail.Pack(_precondition_failure(error.kind, error.violations))
        status.details.append(detail)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        detail = any_pb2.Any()
        info = error_details_pb2.RetryInfo()
        info.retry_delay.FromMilliseconds(max(1, round(retry_after * 1000)))
        detail.Pack(info)
        status.details.append(detail)
    result = rpc_status.to_status(status)
    if retry_after is not None:
        return _Status(result.code, result.details, (
            *result.trailing_metadata,
            (RETRY_PUSHBACK_HEADER, str(max(1, round(retry_after * 1000))))))
    return result


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: tuple) -> None:
        self.code, self.details, self.trailing_metadata = code, details, trailing_metadata


def retry_delay(rpc_error: grpc.RpcError) -> float | None:
    """Client side: the seconds a RESOURCE_EXHAUSTED call says to wait, if it says."""
    status = rpc_status.from_call(rpc_error)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToMilliseconds() / 1000
    return None


def field_violations(rpc_error: grpc.RpcError) -> list[tuple[str, str]]:
    """Client side: the (field, description) pairs of a failed call's BadRequest detail."""
    status = rpc_status.from_call(rpc_error)
    if status is None:
        return []
    found = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found += [(v.field, v.description) for v in bad_request.field_violations]
    return found
