// The gRPC message codec (grpc/oip_grpc_codec.hpp): every datatype as typed
// contents and as raw_input_contents, the framing of raw bytes and BYTES
// elements, parameters, outputs, and the status codes of errors. No sockets.

#include "grpc/oip_grpc_codec.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "protocols/image_decoder.hpp"
#include "tests/codec_fixtures.hpp"

namespace actorserve {
namespace {

using inference::ModelInferRequest;
using testing::bytes_element;
using testing::digit_base64;
using testing::digits_model;
using testing::little_endian;
using testing::tensor_model;

/// A request for the tensor model with one input of `datatype` and `shape`.
ModelInferRequest tensor_request(const std::string& datatype,
                                 std::vector<int64_t> shape = {1, 2, 2}) {
  ModelInferRequest request;
  request.set_model_name("affine");
  auto* input = request.add_inputs();
  input->set_name("input");
  input->set_datatype(datatype);
  for (auto dim : shape)
    input->add_shape(dim);
  return request;
}

ModelInferRequest raw_request(const std::string& datatype, const std::string& raw,
                              std::vector<int64_t> shape = {1, 2, 2}) {
  auto request = tensor_request(datatype, std::move(shape));
  request.add_raw_input_contents(raw);
  return request;
}

grpc_infer_request parse(const ModelInferRequest& request,
                         const model_spec& spec = tensor_model(),
                         const request_limits& limits = {}) {
  return parse_grpc_infer_request(request, spec, limits);
}

api_error error_of(const ModelInferRequest& request,
                   const model_spec& spec = tensor_model()) {
  try {
    parse(request, spec);
  } catch (const api_error& error) {
    return error;
  }
  ADD_FAILURE() << "no error";
  return {};
}

const std::vector<float> one_to_four{1, 2, 3, 4};

/// Appends `values` to a repeated field of typed contents.
template <class Field> void add_all(Field* field, const std::vector<double>& values) {
  for (double value : values)
    field->Add(static_cast<typename Field::value_type>(value));
}

TEST(GrpcCodec, TypedContentsOfEveryNumericDatatype) {
  auto with = [](const std::string& datatype, auto fill) {
    auto request = tensor_request(datatype);
    fill(*request.mutable_inputs(0)->mutable_contents());
    return parse(request).input.values;
  };
  EXPECT_EQ(with("FP32",
                 [](auto& c) {
                   add_all(c.mutable_fp32_contents(), {1, 2, 3, 4});
                 }),
            one_to_four);
  EXPECT_EQ(with("FP64",
                 [](auto& c) {
                   add_all(c.mutable_fp64_contents(), {1, 2, 3, 4});
                 }),
            one_to_four);
  for (const char* type : {"INT8", "INT16", "INT32"})
    EXPECT_EQ(with(type,
                   [](auto& c) {
                     add_all(c.mutable_int_contents(), {1, 2, 3, 4});
                   }),
              one_to_four)
        << type;
  EXPECT_EQ(with("INT64",
                 [](auto& c) {
                   add_all(c.mutable_int64_contents(), {1, 2, 3, 4});
                 }),
            one_to_four);
  for (const char* type : {"UINT8", "UINT16", "UINT32"})
    EXPECT_EQ(with(type,
                   [](auto& c) {
                     add_all(c.mutable_uint_contents(), {1, 2, 3, 4});
                   }),
              one_to_four)
        << type;
  EXPECT_EQ(with("UINT64",
                 [](auto& c) {
                   add_all(c.mutable_uint64_contents(), {1, 2, 3, 4});
                 }),
            one_to_four);
  EXPECT_EQ(with("BOOL",
                 [](auto& c) {
                   add_all(c.mutable_bool_contents(), {true, false, true, true});
                 }),
            (std::vector<float>{1, 0, 1, 1}));
}

TEST(GrpcCodec, TypedContentsOutOfRangeOrInTheWrongFieldAreRefused) {
  auto int8 = tensor_request("INT8");
  add_all(int8.mutable_inputs(0)->mutable_contents()->mutable_int_contents(),
          {1, 2, 300, 4});
  EXPECT_ERROR(error_of(int8), ec::invalid_input, "-128..127");
  auto uint8 = tensor_request("UINT8");
  add_all(uint8.mutable_inputs(0)->mutable_contents()->mutable_uint_contents(),
          {1, 2, 3, 256});
  EXPECT_ERROR(error_of(uint8), ec::invalid_input, "0..255");
  auto nan = tensor_request("FP32");
  add_all(nan.mutable_inputs(0)->mutable_contents()->mutable_fp32_contents(),
          {1, std::numeric_limits<float>::quiet_NaN(), 3, 4});
  EXPECT_ERROR(error_of(nan), ec::invalid_input, "finite");
  auto wrong_field = tensor_request("FP32");
  add_all(wrong_field.mutable_inputs(0)->mutable_contents()->mutable_fp64_contents(),
          {1, 2, 3, 4});
  EXPECT_ERROR(error_of(wrong_field), ec::invalid_input, "holds 0 elements");
  auto too_many = tensor_request("FP32");
  add_all(too_many.mutable_inputs(0)->mutable_contents()->mutable_fp32_contents(),
          {1, 2, 3, 4, 5});
  EXPECT_ERROR(error_of(too_many), ec::invalid_input, "holds 5 elements");
  auto half = tensor_request("FP16");
  EXPECT_ERROR(error_of(half), ec::invalid_input, "raw_input_contents");
}

TEST(GrpcCodec, RawContentsOfEveryDatatype) {
  EXPECT_EQ(parse(raw_request("FP32", little_endian(one_to_four))).input.values,
            one_to_four);
  EXPECT_EQ(parse(raw_request("FP64", little_endian(std::vector<double>{1, 2, 3, 4})))
                .input.values,
            one_to_four);
  EXPECT_EQ(parse(raw_request("INT8", little_endian(std::vector<int8_t>{-1, 2, 3, 4})))
                .input.values,
            (std::vector<float>{-1, 2, 3, 4}));
  EXPECT_EQ(parse(raw_request("UINT16", little_endian(std::vector<uint16_t>{1, 2, 3, 4})))
                .input.values,
            one_to_four);
  EXPECT_EQ(parse(raw_request("INT64", little_endian(std::vector<int64_t>{1, 2, 3, 4})))
                .input.values,
            one_to_four);
  // FP16 1.0 is 0x3c00, BF16 1.0 is 0x3f80: raw is their only form.
  EXPECT_EQ(parse(raw_request("FP16", little_endian(std::vector<uint16_t>(4, 0x3c00))))
                .input.values,
            std::vector<float>(4, 1.0f));
  EXPECT_EQ(parse(raw_request("BF16", little_endian(std::vector<uint16_t>(4, 0x3f80))))
                .input.values,
            std::vector<float>(4, 1.0f));
}

TEST(GrpcCodec, RawFramingErrorsAreClearInvalidArguments) {
  EXPECT_ERROR(error_of(raw_request("FP32", little_endian(std::vector<float>{1, 2, 3}))),
               ec::invalid_input, "12 bytes, but its shape and datatype need 16");
  EXPECT_ERROR(error_of(raw_request("FP32", "")), ec::invalid_input, "0 bytes");
  auto two_raw = raw_request("FP32", little_endian(one_to_four));
  two_raw.add_raw_input_contents("x");
  EXPECT_ERROR(error_of(two_raw), ec::invalid_request, "2 entries for 1 inputs");
  auto mixed = raw_request("FP32", little_endian(one_to_four));
  add_all(mixed.mutable_inputs(0)->mutable_contents()->mutable_fp32_contents(),
          {1, 2, 3, 4});
  EXPECT_ERROR(error_of(mixed), ec::invalid_request, "must not be given");
  EXPECT_ERROR(error_of(raw_request("FP32", little_endian(one_to_four), {1, -2, 2})),
               ec::invalid_request, "inputs[0].shape[1]");
  EXPECT_ERROR(error_of(raw_request("FP32", little_endian(one_to_four), {1, 4})),
               ec::invalid_input, "expected [-1, 2, 2], got [1, 4]");
  EXPECT_ERROR(error_of(raw_request("FP32", "", {0, 2, 2})), ec::invalid_input,
               "must not be empty");
  request_limits small;
  small.max_instances = 1;
  try {
    parse(raw_request("FP32", little_endian(std::vector<float>(8, 1)), {2, 2, 2}),
          tensor_model(), small);
    ADD_FAILURE() << "no error";
  } catch (const api_error& error) {
    EXPECT_EQ(error.code, ec::payload_too_large);
  }
}

ModelInferRequest image_request(const std::string& raw, int64_t count = 1) {
  ModelInferRequest request;
  request.set_model_name("digits");
  auto* input = request.add_inputs();
  input->set_name("image");
  input->set_datatype("BYTES");
  input->add_shape(count);
  request.add_raw_input_contents(raw);
  return request;
}

TEST(GrpcCodec, ImagesAsRawBytesElementsOrTypedBytes) {
  const auto png = *decode_base64(digit_base64());
  auto raw =
      parse(image_request(bytes_element(png) + bytes_element(png), 2), digits_model());
  EXPECT_EQ(raw.input.shape, (std::vector<int64_t>{2, 1, 28, 28}));
  ModelInferRequest typed = image_request("", 2);
  typed.clear_raw_input_contents();
  typed.mutable_inputs(0)->mutable_contents()->add_bytes_contents(png);
  typed.mutable_inputs(0)->mutable_contents()->add_bytes_contents(png);
  EXPECT_EQ(parse(typed, digits_model()).input.values, raw.input.values);
}

TEST(GrpcCodec, BytesFramingErrorsAreClearInvalidArguments) {
  const auto png = *decode_base64(digit_base64());
  EXPECT_ERROR(error_of(image_request("\x05\x00", 1), digits_model()), ec::invalid_input,
               "4-byte length is past the end");
  EXPECT_ERROR(
      error_of(image_request(bytes_element("abc").substr(0, 6), 1), digits_model()),
      ec::invalid_input, "claims 3 bytes, only 2 are left");
  EXPECT_ERROR(error_of(image_request(bytes_element(png) + "x", 1), digits_model()),
               ec::invalid_input, "1 bytes are left");
  EXPECT_ERROR(
      error_of(image_request(std::string("\xff\xff\xff\xff", 4), 1), digits_model()),
      ec::invalid_input, "claims 4294967295 bytes");
  // Answered INVALID_ARGUMENT, as any malformed input (ErrorsMapToTheirStatusCodes).
  EXPECT_ERROR(error_of(image_request(bytes_element("not an image"), 1), digits_model()),
               ec::unsupported_media_type, "element 0");
  EXPECT_ERROR(error_of(raw_request("FP32", little_endian(one_to_four)), digits_model()),
               ec::invalid_request, "unknown input 'input'");
  auto numeric_for_image = image_request(bytes_element(png));
  numeric_for_image.mutable_inputs(0)->set_datatype("FP32");
  EXPECT_ERROR(error_of(numeric_for_image, digits_model()), ec::invalid_input,
               "takes BYTES");
}

TEST(GrpcCodec, ParametersTimeoutPriorityAndOutputs) {
  auto request = raw_request("FP32", little_endian(one_to_four));
  (*request.mutable_parameters())["timeout"].set_int64_param(1500); // µs
  (*request.mutable_parameters())["priority"].set_uint64_param(2);  // as tritonclient
  auto* output = request.add_outputs();
  output->set_name("output");
  (*output->mutable_parameters())["classification"].set_int64_param(3);
  auto parsed = parse(request);
  EXPECT_EQ(parsed.timeout_ms, 2);
  EXPECT_EQ(parsed.priority, 2);
  EXPECT_EQ(parsed.classification, 3);
  EXPECT_EQ(parse(raw_request("FP32", little_endian(one_to_four))).timeout_ms,
            request_limits{}.default_timeout_ms);

  auto negative = raw_request("FP32", little_endian(one_to_four));
  (*negative.mutable_parameters())["priority"].set_int64_param(-1);
  EXPECT_ERROR(error_of(negative), ec::invalid_request, "parameters.priority");
  auto text = raw_request("FP32", little_endian(one_to_four));
  (*text.mutable_parameters())["timeout"].set_string_param("soon");
  EXPECT_ERROR(error_of(text), ec::invalid_request, "parameters.timeout");
  auto unknown = raw_request("FP32", little_endian(one_to_four));
  unknown.add_outputs()->set_name("logits");
  EXPECT_ERROR(error_of(unknown), ec::invalid_request, "unknown output 'logits'");
  auto twice = raw_request("FP32", little_endian(one_to_four));
  twice.add_outputs()->set_name("output");
  twice.add_outputs()->set_name("output");
  EXPECT_ERROR(error_of(twice), ec::invalid_request, "already exists");
  auto none = tensor_request("FP32");
  none.clear_inputs();
  EXPECT_ERROR(error_of(none), ec::invalid_request, "'input' is required");
}

TEST(GrpcCodec, TheResponseCarriesRawOutputContents) {
  auto request = raw_request("FP32", little_endian(one_to_four));
  request.set_id("r-1");
  predict_reply reply;
  reply.version = "3";
  reply.output = {{1, 2, 2}, {3, 5, 7, 9}};
  inference::ModelInferResponse response;
  format_grpc_infer_response(reply, tensor_model(), request, parse(request), response);
  EXPECT_EQ(response.model_name(), "affine");
  EXPECT_EQ(response.model_version(), "3");
  EXPECT_EQ(response.id(), "r-1");
  ASSERT_EQ(response.outputs_size(), 1);
  EXPECT_EQ(response.outputs(0).datatype(), "FP32");
  EXPECT_EQ(std::vector<int64_t>(response.outputs(0).shape().begin(),
                                 response.outputs(0).shape().end()),
            (std::vector<int64_t>{1, 2, 2}));
  ASSERT_EQ(response.raw_output_contents_size(), 1);
  EXPECT_EQ(response.raw_output_contents(0),
            little_endian(std::vector<float>{3, 5, 7, 9}));

  (*request.add_outputs()->mutable_parameters())["classification"].set_int64_param(1);
  request.mutable_outputs(0)->set_name("output");
  inference::ModelInferResponse top;
  format_grpc_infer_response(reply, tensor_model(), request, parse(request), top);
  EXPECT_EQ(top.outputs(0).datatype(), "BYTES");
  EXPECT_EQ(top.raw_output_contents(0), bytes_element("9:3"));
}

TEST(GrpcCodec, ErrorsMapToTheirStatusCodes) {
  auto code = [](ec error) { return grpc_status({error, "m", {}}).error_code(); };
  EXPECT_EQ(code(ec::invalid_input), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code(ec::invalid_json), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code(ec::unsupported_media_type), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code(ec::unauthorized), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(code(ec::forbidden), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(code(ec::model_not_found), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(code(ec::version_not_found), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(code(ec::rate_limited), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(code(ec::payload_too_large), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(code(ec::model_loading), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(code(ec::overloaded), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(code(ec::deadline_exceeded), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(code(ec::cancelled), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(code(ec::internal), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(grpc_status({ec::invalid_input, "bad shape", {}}).error_message(),
            "bad shape");
}

} // namespace
} // namespace actorserve
