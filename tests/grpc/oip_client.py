"""A KServe/Triton-style Open Inference Protocol gRPC client, driven by
tests/grpc_e2e_test.cpp against the real server. Its stubs are generated at
test time from grpc/inference.proto by Debian's protoc and grpc_python_plugin.

usage: oip_client.py STUBS_DIR HOST:PORT SCENARIO [ARGS...]
Prints "ok" when every check of the scenario holds; a failed check raises.
"""
import json
import struct
import sys
import threading
import time

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import inference_pb2 as pb  # noqa: E402
import inference_pb2_grpc as pb_grpc  # noqa: E402

ADDRESS, SCENARIO, ARGS = sys.argv[2], sys.argv[3], sys.argv[4:]
# As tritonclient opens its channels: no message size limit on the client side.
CHANNEL = grpc.insecure_channel(ADDRESS, options=[
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.max_receive_message_length", 2**31 - 1)])
STUB = pb_grpc.GRPCInferenceServiceStub(CHANNEL)


def fp32_raw(values):
    return struct.pack("<%df" % len(values), *values)


def from_fp32_raw(raw):
    return list(struct.unpack("<%df" % (len(raw) // 4), raw))


def bytes_raw(elements):
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def split_bytes_raw(raw):
    out = []
    while raw:
        (size,) = struct.unpack("<I", raw[:4])
        out.append(raw[4:4 + size])
        raw = raw[4 + size:]
    return out


def tensor_request(model, values, shape, datatype="FP32", raw=True, **kw):
    request = pb.ModelInferRequest(model_name=model, **kw)
    tensor = request.inputs.add(name="input", datatype=datatype, shape=shape)
    if raw:
        request.raw_input_contents.append(fp32_raw(values))
    elif datatype == "FP32":
        tensor.contents.fp32_contents.extend(values)
    elif datatype == "INT64":
        tensor.contents.int64_contents.extend(int(v) for v in values)
    elif datatype == "FP64":
        tensor.contents.fp64_contents.extend(values)
    return request


def image_request(model, images, raw=True, classification=0):
    request = pb.ModelInferRequest(model_name=model, id="req-7")
    tensor = request.inputs.add(name="image", datatype="BYTES", shape=[len(images)])
    if raw:
        request.raw_input_contents.append(bytes_raw(images))
    else:
        tensor.contents.bytes_contents.extend(images)
    output = request.outputs.add(name="output")
    if classification:
        output.parameters["classification"].int64_param = classification
    return request


def expect_error(call, code, text=None, **kw):
    try:
        call(**kw)
    except grpc.RpcError as error:
        assert error.code() == code, (error.code(), error.details())
        assert text is None or text in error.details(), error.details()
        return error
    raise AssertionError("expected %s" % code)


def metadata():
    assert STUB.ServerLive(pb.ServerLiveRequest()).live
    assert STUB.ServerReady(pb.ServerReadyRequest()).ready
    server = STUB.ServerMetadata(pb.ServerMetadataRequest())
    assert server.name == "actorserve", server
    for extension in ("binary_tensor_data", "classification", "model_repository"):
        assert extension in server.extensions, server.extensions
    digits = STUB.ModelMetadata(pb.ModelMetadataRequest(name="digits"))
    assert digits.platform == "pytorch_libtorch", digits
    assert (digits.inputs[0].name, digits.inputs[0].datatype) == ("image", "BYTES")
    assert list(digits.inputs[0].shape) == [-1], digits.inputs[0].shape
    assert digits.outputs[0].name == "output" and digits.outputs[0].datatype == "FP32"
    affine = STUB.ModelMetadata(pb.ModelMetadataRequest(name="affine", version="1"))
    assert list(affine.inputs[0].shape) == [-1, 2, 2], affine
    assert list(affine.versions) == ["1"], affine.versions
    assert STUB.ModelReady(pb.ModelReadyRequest(name="digits")).ready
    assert STUB.ModelReady(pb.ModelReadyRequest(name="digits", version="1")).ready
    expect_error(STUB.ModelReady, grpc.StatusCode.NOT_FOUND,
                 request=pb.ModelReadyRequest(name="nope"))
    expect_error(STUB.ModelMetadata, grpc.StatusCode.NOT_FOUND,
                 request=pb.ModelMetadataRequest(name="digits", version="9"))
    index = STUB.RepositoryIndex(pb.RepositoryIndexRequest())
    entries = {(m.name, m.version): m.state for m in index.models}
    assert entries.get(("digits", "1")) == "READY", entries
    assert entries.get(("affine", "1")) == "READY", entries


def affine(model_file):
    import torch
    module = torch.jit.load(model_file)
    values = [1.5, -2.0, 3.25, 4.0, 0.5, 6.0, -7.0, 8.0]
    expected = module(torch.tensor(values).reshape(2, 2, 2)).flatten().tolist()
    for raw, datatype in ((True, "FP32"), (False, "FP32"), (False, "FP64")):
        reply = STUB.ModelInfer(tensor_request("affine", values, [2, 2, 2], datatype,
                                               raw=raw, id="a-1"))
        assert reply.model_name == "affine" and reply.model_version == "1", reply
        assert reply.id == "a-1", reply.id
        out = reply.outputs[0]
        assert (out.name, out.datatype, list(out.shape)) == ("output", "FP32", [2, 2, 2])
        assert len(reply.raw_output_contents) == 1
        got = from_fp32_raw(reply.raw_output_contents[0])
        assert all(abs(a - b) < 1e-5 for a, b in zip(got, expected)), (got, expected)
    ints = [1, 2, 3, 4]
    reply = STUB.ModelInfer(tensor_request("affine", ints, [1, 2, 2], "INT64", raw=False))
    expected = module(torch.tensor(ints, dtype=torch.float32).reshape(1, 2, 2))
    assert from_fp32_raw(reply.raw_output_contents[0]) == expected.flatten().tolist()


def digits(holdout_file, http_base):
    import requests
    samples = [json.loads(line) for line in open(holdout_file)][:8]
    import base64
    pngs = [base64.b64decode(s["png"]) for s in samples]
    raw = STUB.ModelInfer(image_request("digits", pngs))
    typed = STUB.ModelInfer(image_request("digits", pngs, raw=False))
    assert raw.id == "req-7"
    assert list(raw.outputs[0].shape) == [8, 10], raw.outputs[0].shape
    assert raw.raw_output_contents == typed.raw_output_contents
    scores = from_fp32_raw(raw.raw_output_contents[0])
    # The same numbers as the Open Inference Protocol over HTTP.
    body = {"inputs": [{"name": "image", "shape": [8], "datatype": "BYTES",
                        "data": [s["png"] for s in samples]}]}
    http = requests.post(http_base + "/v2/models/digits/infer", json=body)
    assert http.status_code == 200, http.text
    assert http.json()["outputs"][0]["data"] == scores
    correct = 0
    for row, sample in enumerate(samples):
        best = max(range(10), key=lambda i: scores[row * 10 + i])
        correct += best == sample["label"]
    assert correct >= 7, correct
    top = STUB.ModelInfer(image_request("digits", pngs, classification=2))
    out = top.outputs[0]
    assert (out.datatype, list(out.shape)) == ("BYTES", [8, 2]), out
    texts = [t.decode() for t in split_bytes_raw(top.raw_output_contents[0])]
    first = texts[0].split(":")
    assert int(first[1]) == max(range(10), key=lambda i: scores[i]), texts


def errors(message_limit):
    INVALID = grpc.StatusCode.INVALID_ARGUMENT
    expect_error(STUB.ModelInfer, grpc.StatusCode.NOT_FOUND, "nope",
                 request=tensor_request("nope", [1, 2, 3, 4], [1, 2, 2]))
    expect_error(STUB.ModelInfer, grpc.StatusCode.NOT_FOUND,
                 request=tensor_request("affine", [1, 2, 3, 4], [1, 2, 2],
                                        model_version="9"))
    expect_error(STUB.ModelInfer, INVALID, "expected [-1, 2, 2]",
                 request=tensor_request("affine", [1, 2, 3], [1, 3]))
    expect_error(STUB.ModelInfer, INVALID, "bytes",
                 request=tensor_request("affine", [1, 2, 3], [1, 2, 2]))
    both = tensor_request("affine", [1, 2, 3, 4], [1, 2, 2])
    both.inputs[0].contents.fp32_contents.extend([1, 2, 3, 4])
    expect_error(STUB.ModelInfer, INVALID, "raw_input_contents", request=both)
    expect_error(STUB.ModelInfer, INVALID, "unknown datatype",
                 request=tensor_request("affine", [1, 2, 3, 4], [1, 2, 2], "FP8"))
    expect_error(STUB.ModelInfer, INVALID, "finite",
                 request=tensor_request("affine", [1, float("nan"), 3, 4], [1, 2, 2]))
    short = image_request("digits", [b"\x89PNG"])
    short.raw_input_contents[0] = struct.pack("<I", 1000) + b"abc"
    expect_error(STUB.ModelInfer, INVALID, "claims 1000 bytes", request=short)
    junk = image_request("digits", [b"not an image"])
    expect_error(STUB.ModelInfer, INVALID, request=junk)
    wrong_input = tensor_request("affine", [1, 2, 3, 4], [1, 2, 2])
    wrong_input.inputs[0].name = "x"
    expect_error(STUB.ModelInfer, INVALID, "unknown input", request=wrong_input)
    # Bigger than the server's message limit (the HTTP body limit).
    rows = int(message_limit) // 16 + 1
    huge = tensor_request("affine", [0.0] * (4 * rows), [rows, 2, 2])
    expect_error(STUB.ModelInfer, grpc.StatusCode.RESOURCE_EXHAUSTED, request=huge)


def auth(key, burst):
    request = tensor_request("affine", [1, 2, 3, 4], [1, 2, 2])
    assert STUB.ServerLive(pb.ServerLiveRequest()).live  # probes need no key
    expect_error(STUB.ModelInfer, grpc.StatusCode.UNAUTHENTICATED, request=request)
    expect_error(STUB.ModelInfer, grpc.StatusCode.UNAUTHENTICATED, request=request,
                 metadata=[("x-api-key", "wrong")])
    reply = STUB.ModelInfer(request, metadata=[("x-api-key", key)])
    assert from_fp32_raw(reply.raw_output_contents[0]) == [3.0, 5.0, 7.0, 9.0]
    expect_error(STUB.RepositoryIndex, grpc.StatusCode.UNAUTHENTICATED,
                 request=pb.RepositoryIndexRequest())
    # Model control needs an admin key.
    expect_error(STUB.RepositoryModelUnload, grpc.StatusCode.PERMISSION_DENIED,
                 request=pb.RepositoryModelUnloadRequest(model_name="affine"),
                 metadata=[("x-api-key", key)])
    # The key's rate (burst) runs out: RESOURCE_EXHAUSTED.
    codes = []
    for _ in range(int(burst) + 5):
        try:
            STUB.ModelInfer(request, metadata=[("x-api-key", key)])
            codes.append("OK")
        except grpc.RpcError as error:
            codes.append(error.code().name)
    assert "RESOURCE_EXHAUSTED" in codes, codes


def slow_request(rows, **kw):
    return tensor_request("slow", [1.0] * (4 * rows), [rows, 4], **kw)


def deadline():
    started = time.monotonic()
    expect_error(STUB.ModelInfer, grpc.StatusCode.DEADLINE_EXCEEDED,
                 request=slow_request(16), timeout=0.2)
    assert time.monotonic() - started < 2.0
    timeout_parameter = slow_request(16)
    timeout_parameter.parameters["timeout"].int64_param = 100000  # µs
    expect_error(STUB.ModelInfer, grpc.StatusCode.DEADLINE_EXCEEDED,
                 request=timeout_parameter)


def cancel():
    # One long request runs; a second waits behind it and is cancelled.
    running = STUB.ModelInfer.future(slow_request(16))
    time.sleep(0.2)
    queued = STUB.ModelInfer.future(slow_request(16))
    time.sleep(0.2)
    assert queued.cancel()
    assert running.result().model_name == "slow"


def lifecycle():
    """Unloads affine, sees it gone, loads it back from the repository."""
    STUB.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="affine"))
    expect_error(STUB.ModelReady, grpc.StatusCode.NOT_FOUND,
                 request=pb.ModelReadyRequest(name="affine"))
    index = STUB.RepositoryIndex(pb.RepositoryIndexRequest())
    states = {(m.name, m.version): m.state for m in index.models}
    assert states.get(("affine", "1")) == "UNAVAILABLE", states
    ready_only = STUB.RepositoryIndex(pb.RepositoryIndexRequest(ready=True))
    assert all(m.name != "affine" for m in ready_only.models), ready_only
    STUB.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="affine"))
    assert STUB.ModelReady(pb.ModelReadyRequest(name="affine")).ready
    reply = STUB.ModelInfer(tensor_request("affine", [1, 2, 3, 4], [1, 2, 2]))
    assert from_fp32_raw(reply.raw_output_contents[0]) == [3.0, 5.0, 7.0, 9.0]
    expect_error(STUB.RepositoryModelLoad, grpc.StatusCode.NOT_FOUND,
                 request=pb.RepositoryModelLoadRequest(model_name="nope"))


def queue_depth(http_base, model):
    import requests
    text = requests.get(http_base + "/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("actorserve_queue_depth{")
               and 'model="%s"' % model in line)


def overtaken(http_base, priority):
    """Floods `slow` with 20 one-row calls of the lowest priority and, once
    all of them reached the server, sends one with `priority` (as tritonclient
    sends it: uint64_param). Returns how many of the flood were answered
    while it waited, and how many were queued when it was sent."""
    flood = [STUB.ModelInfer.future(slow_request(1)) for _ in range(20)]
    deadline = time.monotonic() + 60
    # Queued, plus answered, plus the one running: the whole flood arrived.
    while True:
        queued = queue_depth(http_base, "slow")
        if queued + sum(f.done() for f in flood) >= len(flood) - 1:
            break
        assert time.monotonic() < deadline, "the flood never reached the server"
        time.sleep(0.01)
    last = slow_request(1)
    if priority:
        last.parameters["priority"].uint64_param = priority
    before = sum(f.done() for f in flood)
    STUB.ModelInfer(last)
    answered = sum(f.done() for f in flood) - before
    for call in flood:
        call.result()
    return answered, queued


def priority(http_base):
    # The running row and at most one that started while the call travelled,
    # with enough of the flood queued ahead of it for that to mean something.
    answered, queued = overtaken(http_base, 1)
    assert queued >= 7 and answered <= 2, (answered, queued)
    # Without a priority the same call waits behind what was queued.
    answered, queued = overtaken(http_base, 0)
    assert queued >= 7 and answered >= queued - 1, (answered, queued)


def drain(ready_file):
    # A call in flight when SIGTERM arrives still gets its answer.
    call = STUB.ModelInfer.future(slow_request(16))
    time.sleep(0.2)
    open(ready_file, "w").write("started")
    reply = call.result(timeout=30)
    assert len(from_fp32_raw(reply.raw_output_contents[0])) == 64
    # New calls are refused once the server drains.
    for _ in range(50):
        try:
            STUB.ServerLive(pb.ServerLiveRequest(), timeout=1)
        except grpc.RpcError:
            return
        time.sleep(0.1)
    raise AssertionError("the server still takes calls after draining")


SCENARIOS = {"metadata": metadata, "affine": affine, "digits": digits,
             "errors": errors, "auth": auth, "priority": priority, "lifecycle": lifecycle, "deadline": deadline, "cancel": cancel,
             "drain": drain}
SCENARIOS[SCENARIO](*ARGS)
print("ok")
