import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from server import errors
from server.api.errors import status_code, to_status


def test_every_domain_error_has_its_status():
    assert status_code(errors.InvalidInput("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert status_code(errors.NotFound("x")) == grpc.StatusCode.NOT_FOUND
    assert status_code(errors.Conflict("x")) == grpc.StatusCode.ALREADY_EXISTS
    assert status_code(errors.TooLarge("x")) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_code(errors.Unavailable("x")) == grpc.StatusCode.UNAVAILABLE
    assert status_code(errors.Unauthenticated("x")) == grpc.StatusCode.UNAUTHENTICATED
    assert status_code(errors.PermissionDenied("x")) == grpc.StatusCode.PERMISSION_DENIED


def test_invalid_input_carries_field_violations():
    error = errors.InvalidInput("data does not match", [
        errors.FieldViolation("$.customer.name", "'name' is a required property"),
        errors.FieldViolation("$.transactions[2].amount", "'12,50' does not match"),
    ])
    status = to_status(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "$.customer.name" in status.details
    decoded = rpc_status.status_pb2.Status.FromString(dict(status.trailing_metadata)[
        "grpc-status-details-bin"])
    bad_request = error_details_pb2.BadRequest()
    decoded.details[0].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("$.customer.name", "'name' is a required property"),
        ("$.transactions[2].amount", "'12,50' does not match"),
    ]


def test_a_field_error_names_its_path_once():
    # was: "invalid $.customer.email: $.customer.email: ..." (QA): the path said twice
    error = errors.InvalidInput.field("$.customer.email", "is not a valid email address")
    assert str(error) == "invalid $.customer.email: is not a valid email address"
    assert to_status(error).details == "invalid $.customer.email: is not a valid email address"
    assert error.violations == [errors.FieldViolation("$.customer.email",
                                                      "is not a valid email address")]
    # violations of other fields than the one the message names keep their paths
    several = errors.InvalidInput("invalid $.lines", [
        errors.FieldViolation("$.lines", "is empty"),
        errors.FieldViolation("$.lines[0].amount", "is not a number")])
    assert str(several) == "invalid $.lines: is empty; $.lines[0].amount: is not a number"
    schema = errors.InvalidInput("data does not match the schema of layout x@1",
                                 [errors.FieldViolation("$.a", "is required")])
    assert str(schema) == "data does not match the schema of layout x@1: $.a: is required"
