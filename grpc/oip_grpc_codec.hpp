#pragma once

// The Open Inference Protocol's gRPC messages (grpc/inference.proto): a
// ModelInferRequest to one prepared input batch, a reply to a
// ModelInferResponse with raw_output_contents, model metadata, and our error
// enum as gRPC status codes. ../shared/API.md "Open Inference Protocol (KServe
// v2), gRPC" and ../shared/protocols/open-inference-grpc.md. Pure functions on
// the door's threads; malformed requests throw api_error, which grpc_status()
// turns into the call's status. The checks on shapes, datatypes and images
// are the HTTP codec's (protocols/oip_model_tensors.hpp).

#include <cstdint>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>

#include "grpc/inference.pb.h"
#include "messages/error.hpp"
#include "messages/payloads.hpp"
#include "protocols/codec_support.hpp"

namespace actorserve {

/// A ModelInferRequest that passed every check.
struct grpc_infer_request {
  tensor input;               // [N, ...] float32, as every door builds it
  int32_t classification = 0; // > 0: the top k per row as BYTES
  int64_t timeout_ms = 0;     // parameters.timeout (µs) or default_timeout_ms, capped
  int32_t priority = 0;       // parameters.priority; 0: default, 1: highest
};

/// Checks `request` against the model `spec`: its one input, by name, as typed
/// `contents` or as raw_input_contents (one entry per input, never both), the
/// requested outputs and the parameters `timeout` and `priority`.
grpc_infer_request parse_grpc_infer_request(const inference::ModelInferRequest& request,
                                            const model_spec& spec,
                                            const request_limits& limits);

/// The response: model name and version, the request's id, one output
/// "output" whose bytes are in raw_output_contents (the form tritonclient
/// reads).
void format_grpc_infer_response(const predict_reply& reply, const model_spec& spec,
                                const inference::ModelInferRequest& request,
                                const grpc_infer_request& parsed,
                                inference::ModelInferResponse& response);

/// ModelMetadata: as GET /v2/models/{m} (protocols/oip_codec.hpp).
void format_grpc_model_metadata(const model_spec& spec,
                                const std::vector<std::string>& versions,
                                inference::ModelMetadataResponse& response);

/// The status of an error: INVALID_ARGUMENT, UNAUTHENTICATED,
/// PERMISSION_DENIED, NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE,
/// DEADLINE_EXCEEDED, CANCELLED or INTERNAL, with the error's message.
grpc::Status grpc_status(const api_error& error);

} // namespace actorserve
