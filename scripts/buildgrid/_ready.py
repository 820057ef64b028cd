"""Wait until a BuildGrid server answers; used by ./start (run by the venv's python).

usage: _ready.py HOST:PORT PID TIMEOUT_SECONDS cache|exec

Ready means: the gRPC health service says SERVING for the whole server (""),
and Capabilities.GetCapabilities for instance "" succeeds (and, for exec,
reports execution enabled).
Exit status: 0 ready, 3 the server process PID died, 4 timed out.
"""

import os
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as dead.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def main() -> int:
    address, pid, timeout, mode = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    deadline = time.monotonic() + timeout
    channel = grpc.insecure_channel(address)
    health = health_pb2_grpc.HealthStub(channel)
    caps = re_grpc.CapabilitiesStub(channel)
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if not alive(pid):
            print(f"server process {pid} exited", file=sys.stderr)
            return 3
        try:
            status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1).status
            if status != health_pb2.HealthCheckResponse.SERVING:
                raise RuntimeError(f"health status {status}")
            reply = caps.GetCapabilities(re_pb2.GetCapabilitiesRequest(instance_name=""), timeout=2)
            if mode == "exec" and not reply.execution_capabilities.exec_enabled:
                raise RuntimeError("execution not enabled yet")
            return 0
        except (grpc.RpcError, RuntimeError) as e:
            last_error = str(e.code()) if isinstance(e, grpc.RpcError) else str(e)
        time.sleep(0.1)
    print(f"not ready after {timeout:.0f}s (last: {last_error})", file=sys.stderr)
    return 4


if __name__ == "__main__":
    sys.exit(main())
