"""Kanal API contract: generated protobuf and gRPC code (see proto/generate.py)."""
