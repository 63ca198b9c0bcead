"""Domain errors -> gRPC status codes, with `google.rpc` details naming the fields.

One table decides the status of every `KanalError`; an `InvalidInput` also carries a
`google.rpc.BadRequest` with one field violation per problem, so a client can show
exactly which field of its data was wrong and why.
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
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DataLoss: grpc.StatusCode.DATA_LOSS,
}


def status_code(error: errors.KanalError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return grpc.StatusCode.INTERNAL


def to_status(error: errors.KanalError) -> grpc.Status:
    code = status_code(error)
    status = status_pb2.Status(code=code.value[0], message=str(error))
    if isinstance(error, errors.InvalidInput) and error.violations:
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in error.violations
        ]))
        status.details.append(detail)
    return rpc_status.to_status(status)


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
