"""Write the protobuf schema BuildGrid 0.4.4 itself speaks, as a FileDescriptorSet.

usage: "$venv/bin/python" scripts/buildgrid/descriptors.py OUT.bin

The buildgrid wheel ships generated Python modules but no .proto files. This
dumps the descriptors compiled into them (REAPI v2, Remote Workers v1test2
Bots, ByteStream, google.longrunning and everything they import) so that
e.g. prost-build can generate matching Rust types from the file
(`prost_build::Config::compile_fds`, or tonic-build's equivalent).
"""

import sys

from google.protobuf import descriptor_pb2

from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2
from buildgrid._protos.google.bytestream import bytestream_pb2
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import bots_pb2
from buildgrid._protos.google.longrunning import operations_pb2


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    fds = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(fd) -> None:  # dependencies first, as protoc orders them
        if fd.name in seen:
            return
        for dep in fd.dependencies:
            add(dep)
        seen.add(fd.name)
        fd.CopyToProto(fds.file.add())

    for module in (remote_execution_pb2, bots_pb2, bytestream_pb2, operations_pb2):
        add(module.DESCRIPTOR)
    with open(sys.argv[1], "wb") as f:
        f.write(fds.SerializeToString())
    print(f"wrote {len(fds.file)} files: {', '.join(sorted(seen))}")


if __name__ == "__main__":
    main()
