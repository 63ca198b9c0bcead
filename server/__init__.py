"""Kanal: multichannel document composition and output management."""

import os

# gRPC's fork support restarts its poller in a forked child, where subprocess closes the
# poller's fd before exec: the child aborts (grpc/grpc#43055, grpcio >= 1.81), and SeaweedFS
# or a worker process fails to start while RPCs are in flight (measured here: 8 of 150
# Popen calls beside a busy channel). Kanal never forks with gRPC state (worker pools use
# 'spawn'), so it needs none of it. Set before grpc loads; an explicit setting wins.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
