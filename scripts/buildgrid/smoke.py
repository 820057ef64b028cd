"""Check a BuildGrid server started by ./start against the behaviour README.md documents.

usage: "$venv/bin/python" scripts/buildgrid/smoke.py DIR

DIR is the state directory given to ./start (its url, mode and cas/ are read).
Runs the cache checks; for `exec` also runs one action end to end through a
throwaway bot speaking the Remote Workers API. Leaves only unique test blobs
and action-cache entries behind. Each check prints `ok` or `FAIL`, the last
line counts them; exit status 1 if any failed.
"""

import hashlib
import os
import sys
import threading
import time
import uuid

import grpc

from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from buildgrid._protos.google.bytestream import bytestream_pb2 as bs_pb2
from buildgrid._protos.google.bytestream import bytestream_pb2_grpc as bs_grpc
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import bots_pb2, bots_pb2_grpc
from buildgrid._protos.google.rpc import code_pb2

INSTANCE = ""
RESULTS = {"passed": 0, "failed": 0}


def check(name, cond, detail=""):
    RESULTS["passed" if cond else "failed"] += 1
    print(f"{'ok  ' if cond else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    return cond


def digest(data: bytes) -> re_pb2.Digest:
    return re_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def upload(cas, *blobs):
    reqs = [re_pb2.BatchUpdateBlobsRequest.Request(digest=digest(b), data=b) for b in blobs]
    reply = cas.BatchUpdateBlobs(re_pb2.BatchUpdateBlobsRequest(instance_name=INSTANCE, requests=reqs))
    return [r.status.code for r in reply.responses]


def write_chunks(resource_name, data, chunk=1 << 20):
    for off in range(0, len(data), chunk):
        part = data[off : off + chunk]
        yield bs_pb2.WriteRequest(
            resource_name=resource_name if off == 0 else "",
            write_offset=off,
            data=part,
            finish_write=off + len(part) == len(data),
        )


def cache_checks(channel, state_dir, mode):
    caps = re_grpc.CapabilitiesStub(channel).GetCapabilities(re_pb2.GetCapabilitiesRequest(instance_name=INSTANCE))
    cc = caps.cache_capabilities
    check(
        "capabilities",
        list(cc.digest_functions) == [re_pb2.DigestFunction.SHA256]
        and cc.action_cache_update_capabilities.update_enabled
        and caps.execution_capabilities.exec_enabled == (mode == "exec"),
        f"digest_functions={list(cc.digest_functions)} max_batch_total_size_bytes={cc.max_batch_total_size_bytes} "
        f"update_enabled={cc.action_cache_update_capabilities.update_enabled} "
        f"exec_enabled={caps.execution_capabilities.exec_enabled} "
        f"api={caps.low_api_version.major}.{caps.low_api_version.minor}-"
        f"{caps.high_api_version.major}.{caps.high_api_version.minor}",
    )

    cas = re_grpc.ContentAddressableStorageStub(channel)
    blob = b"smoke " + os.urandom(64)
    empty = digest(b"")
    missing = cas.FindMissingBlobs(
        re_pb2.FindMissingBlobsRequest(instance_name=INSTANCE, blob_digests=[digest(blob), empty])
    ).missing_blob_digests
    check("FindMissingBlobs", [d.hash for d in missing] == [digest(blob).hash], "new blob missing, empty blob never")

    statuses = upload(cas, blob)
    bad = cas.BatchUpdateBlobs(
        re_pb2.BatchUpdateBlobsRequest(
            instance_name=INSTANCE,
            requests=[re_pb2.BatchUpdateBlobsRequest.Request(digest=digest(b"x"), data=b"y")],
        )
    ).responses[0].status.code
    reply = cas.BatchReadBlobs(
        re_pb2.BatchReadBlobsRequest(instance_name=INSTANCE, digests=[digest(blob), digest(os.urandom(8))])
    )
    got = {r.digest.hash: (r.status.code, r.data) for r in reply.responses}
    check(
        "BatchUpdateBlobs/BatchReadBlobs",
        statuses == [code_pb2.OK]
        and bad == code_pb2.INVALID_ARGUMENT
        and got[digest(blob).hash] == (code_pb2.OK, blob)
        and sorted(c for c, _ in got.values()) == [code_pb2.OK, code_pb2.NOT_FOUND],
        "per-blob status: mismatched data INVALID_ARGUMENT, absent blob NOT_FOUND",
    )

    bs = bs_grpc.ByteStreamStub(channel)
    big = os.urandom(5 * 1024 * 1024 + 12345)
    bd = digest(big)
    committed = bs.Write(write_chunks(f"uploads/{uuid.uuid4()}/blobs/{bd.hash}/{bd.size_bytes}", big)).committed_size
    read = b"".join(r.data for r in bs.Read(bs_pb2.ReadRequest(resource_name=f"blobs/{bd.hash}/{bd.size_bytes}")))
    tail = b"".join(
        r.data
        for r in bs.Read(bs_pb2.ReadRequest(resource_name=f"blobs/{bd.hash}/{bd.size_bytes}", read_offset=1000))
    )
    check(
        "ByteStream Write/Read >4 MiB",
        committed == bd.size_bytes and read == big and tail == big[1000:],
        f"{bd.size_bytes} bytes via uploads/UUID/blobs/HASH/SIZE and blobs/HASH/SIZE",
    )

    ac = re_grpc.ActionCacheStub(channel)
    command = re_pb2.Command(arguments=["smoke", str(uuid.uuid4())]).SerializeToString()
    action = re_pb2.Action(command_digest=digest(command), input_root_digest=empty).SerializeToString()
    ad = digest(action)  # deliberately NOT uploaded
    result = re_pb2.ActionResult(exit_code=0, stdout_raw=b"hi\n")
    ac.UpdateActionResult(re_pb2.UpdateActionResultRequest(instance_name=INSTANCE, action_digest=ad, action_result=result))
    back = ac.GetActionResult(re_pb2.GetActionResultRequest(instance_name=INSTANCE, action_digest=ad))
    check("ActionCache Update/Get (Action not in CAS)", back.stdout_raw == b"hi\n")

    ad2 = digest(action + b"2")
    dangling = re_pb2.ActionResult(output_files=[re_pb2.OutputFile(path="o", digest=digest(os.urandom(16)))])
    ac.UpdateActionResult(re_pb2.UpdateActionResultRequest(instance_name=INSTANCE, action_digest=ad2, action_result=dangling))
    try:
        ac.GetActionResult(re_pb2.GetActionResultRequest(instance_name=INSTANCE, action_digest=ad2))
        code = grpc.StatusCode.OK
    except grpc.RpcError as e:
        code = e.code()
    check("ActionCache hides results whose outputs are missing", code == grpc.StatusCode.NOT_FOUND, str(code))

    path = os.path.join(state_dir, "cas", "cas", "objects", digest(blob).hash[:2], digest(blob).hash[2:])
    if check("disk CAS layout", os.path.isfile(path), path):
        with open(path, "r+b") as f:
            first = f.read(1)
            f.seek(0)
            f.write(bytes([first[0] ^ 0xFF]))
        r = cas.BatchReadBlobs(re_pb2.BatchReadBlobsRequest(instance_name=INSTANCE, digests=[digest(blob)])).responses[0]
        check(
            "corrupt blob is served as is (no verification on read)",
            r.status.code == code_pb2.OK and r.data != blob and len(r.data) == len(blob),
        )
        os.remove(path)
        missing = cas.FindMissingBlobs(
            re_pb2.FindMissingBlobsRequest(instance_name=INSTANCE, blob_digests=[digest(blob)])
        ).missing_blob_digests
        check("deleted blob file reads as missing", len(missing) == 1)


def exec_checks(channel):
    cas = re_grpc.ContentAddressableStorageStub(channel)
    bots = bots_pb2_grpc.BotsStub(channel)
    execution = re_grpc.ExecutionStub(channel)

    command = re_pb2.Command(arguments=["/bin/echo", str(uuid.uuid4())], output_paths=["out"]).SerializeToString()
    root = re_pb2.Directory().SerializeToString()  # empty: b"", the empty blob
    action = re_pb2.Action(command_digest=digest(command), input_root_digest=digest(root)).SerializeToString()
    ad = digest(action)
    upload(cas, command, action, root)
    output = b"smoke output " + os.urandom(8)
    seen = {}

    def bot():
        # A short deadline: CreateBotSession long-polls for work (80% of the
        # deadline) like UpdateBotSession; under ~3.75 s it returns at once.
        session = bots.CreateBotSession(
            bots_pb2.CreateBotSessionRequest(
                parent=INSTANCE,
                bot_session=bots_pb2.BotSession(bot_id=f"smoke-{uuid.uuid4()}", status=bots_pb2.OK),
            ),
            timeout=3,
        )
        seen["session"] = session.name
        deadline = time.monotonic() + 30
        while not session.leases and time.monotonic() < deadline:
            started = time.monotonic()
            session, call = bots.UpdateBotSession.with_call(
                bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session), timeout=10
            )
            seen["poll_s"] = round(time.monotonic() - started, 2)
            seen["trailing"] = dict(call.trailing_metadata())
        if not session.leases:
            return
        lease = session.leases[0]
        payload = re_pb2.Action()
        seen["payload_type"] = lease.payload.type_url
        seen["lease_state"] = bots_pb2.LeaseState.Name(lease.state)
        if lease.payload.Unpack(payload):
            seen["payload_digest_ok"] = digest(payload.SerializeToString()) == ad
        meta = seen.get("trailing", {}).get("executeoperationmetadata-bin")
        if meta:
            seen["meta_digest_ok"] = re_pb2.ExecuteOperationMetadata.FromString(meta).action_digest == ad
        upload(cas, output)
        lease.state = bots_pb2.COMPLETED
        lease.status.code = code_pb2.OK
        lease.result.Pack(
            re_pb2.ActionResult(
                exit_code=0, stdout_raw=b"done\n", output_files=[re_pb2.OutputFile(path="out", digest=digest(output))]
            )
        )
        session = bots.UpdateBotSession(
            bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session), timeout=10
        )
        seen["leases_after_report"] = len(session.leases)

    thread = threading.Thread(target=bot, daemon=True)
    thread.start()
    started = time.monotonic()
    stages, last = [], None
    try:
        for op in execution.Execute(re_pb2.ExecuteRequest(instance_name=INSTANCE, action_digest=ad), timeout=40):
            meta = re_pb2.ExecuteOperationMetadata()
            op.metadata.Unpack(meta)
            stages.append(re_pb2.ExecutionStage.Value.Name(meta.stage))
            last = op
    except grpc.RpcError as e:
        check("Execute", False, f"{e.code()} {e.details()}")
        return
    elapsed = time.monotonic() - started
    thread.join(timeout=15)
    response = re_pb2.ExecuteResponse()
    ok = last is not None and last.done and last.response.Unpack(response)
    check(
        "bot: lease payload is Any(Action)",
        seen.get("payload_type") == "type.googleapis.com/build.bazel.remote.execution.v2.Action"
        and seen.get("payload_digest_ok") is True
        and seen.get("meta_digest_ok") is True
        and seen.get("lease_state") == "ACTIVE",
        f"session={seen.get('session')} state={seen.get('lease_state')} last UpdateBotSession took {seen.get('poll_s')}s",
    )
    check(
        "Execute -> ExecuteResponse from the bot's lease.result",
        ok
        and response.status.code == code_pb2.OK
        and response.result.stdout_raw == b"done\n"
        and response.result.output_files[0].digest == digest(output)
        and not response.cached_result
        and seen.get("leases_after_report") == 0,
        f"operation={last.name if last else None} stages={stages} in {elapsed:.2f}s",
    )
    again = list(execution.Execute(re_pb2.ExecuteRequest(instance_name=INSTANCE, action_digest=ad), timeout=20))[-1]
    response = re_pb2.ExecuteResponse()
    again.response.Unpack(response)
    check("second Execute is an action-cache hit", again.done and response.cached_result)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    state_dir = sys.argv[1]
    with open(os.path.join(state_dir, "url"), encoding="utf-8") as f:
        url = f.read().strip()
    with open(os.path.join(state_dir, "mode"), encoding="utf-8") as f:
        mode = f.read().strip()
    channel = grpc.insecure_channel(url.removeprefix("http://"))
    print(f"smoke: {mode} server at {url}", flush=True)
    cache_checks(channel, state_dir, mode)
    if mode == "exec":
        exec_checks(channel)
    print(f"smoke: {RESULTS['passed']} passed, {RESULTS['failed']} failed")
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
