"""Test-wide setup that must happen before anything imports grpc (see server/__init__.py)."""

import server  # noqa: F401 - sets GRPC_ENABLE_FORK_SUPPORT before grpc loads
