#include "protocols/oip_codec.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "protocols/image_decoder.hpp"
#include "protocols/standard_errors.hpp"
#include "protocols/v1_codec.hpp"
#include "tests/codec_fixtures.hpp"

namespace actorserve {
namespace {

using json = nlohmann::json;

using testing::bytes_element;
using testing::digit_base64;
using testing::digits_model;
using testing::little_endian;
using testing::tensor_model;

std::string digit_png() {
  return *decode_base64(digit_base64());
}

json fp32_input(json shape, json data) {
  return {{"name", "input"}, {"shape", shape}, {"datatype", "FP32"}, {"data", data}};
}

oip_infer_request parse(const json& body, const model_spec& spec = tensor_model(),
                        const request_limits& limits = {}) {
  return parse_oip_infer_request(body.dump(), std::nullopt, spec, limits);
}

// A request whose one input comes in binary: the JSON part, then `binary`.
oip_infer_request parse_binary(json input, const std::string& binary,
                               const model_spec& spec = tensor_model()) {
  input["parameters"] = {{"binary_data_size", binary.size()}};
  const auto header = json{{"inputs", {input}}}.dump();
  return parse_oip_infer_request(header + binary, header.size(), spec, {});
}

api_error error_of(const std::string& body, std::optional<size_t> json_length,
                   const model_spec& spec = tensor_model(),
                   const request_limits& limits = {}) {
  try {
    parse_oip_infer_request(body, json_length, spec, limits);
  } catch (const api_error& error) {
    return error;
  }
  ADD_FAILURE() << "no error for " << body.substr(0, 200);
  return {};
}

api_error error_of(const json& body, const model_spec& spec = tensor_model(),
                   const request_limits& limits = {}) {
  return error_of(body.dump(), std::nullopt, spec, limits);
}

json typed_input(const std::string& datatype) {
  return {{"name", "input"}, {"shape", {1, 2, 2}}, {"datatype", datatype}};
}

// --- datatypes (each conversion: oip_tensor_data_test) ------------------------------

TEST(OipDatatypes, RequestsConvertThroughTheirDatatype) {
  auto request =
      parse_binary(typed_input("INT64"), little_endian<int64_t>({1, -2, 3, 4}));
  EXPECT_EQ(request.input.shape, (std::vector<int64_t>{1, 2, 2}));
  EXPECT_EQ(request.input.values, (std::vector<float>{1, -2, 3, 4}));
  auto input = typed_input("UINT8");
  input["data"] = {{0, 255}, {3, 4}};
  EXPECT_EQ(parse({{"inputs", {input}}}).input.values,
            (std::vector<float>{0, 255, 3, 4}));
  input["data"] = {0, 256, 3, 4};
  EXPECT_ERROR(error_of({{"inputs", {input}}}), ec::invalid_input, "0..255");
  input["datatype"] = "FP8";
  EXPECT_ERROR(error_of({{"inputs", {input}}}), ec::invalid_request, "unknown datatype");
}

// --- data layout ---------------------------------------------------------------------

TEST(OipData, FlatAndNestedGiveTheSameTensor) {
  const auto flat =
      parse({{"inputs", {fp32_input({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8})}}});
  const auto nested =
      parse({{"inputs", {fp32_input({2, 2, 2}, {{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}})}}});
  EXPECT_EQ(flat.input.shape, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(flat.input.shape, nested.input.shape);
  EXPECT_EQ(flat.input.values, nested.input.values);
  EXPECT_EQ(flat.input.values, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(OipData, ElementCountMustEqualTheShapeProduct) {
  EXPECT_ERROR(error_of({{"inputs", {fp32_input({1, 2, 2}, {1, 2, 3})}}}),
               ec::invalid_input, "holds 3 elements");
  EXPECT_ERROR(error_of({{"inputs", {fp32_input({1, 2, 2}, {1, 2, 3, 4, 5})}}}),
               ec::invalid_input, "more than 4");
}

TEST(OipData, ShapeMustMatchTheModel) {
  auto bad_shape = [](json shape) {
    return error_of({{"inputs", {fp32_input(shape, {1, 2, 3, 4})}}});
  };
  EXPECT_ERROR(bad_shape({4}), ec::invalid_input, "expected [-1, 2, 2]");
  EXPECT_ERROR(bad_shape({1, 4, 1}), ec::invalid_input, "expected [-1, 2, 2]");
  EXPECT_ERROR(bad_shape({1, -2, -2}), ec::invalid_request, "shape[1]");
  EXPECT_ERROR(bad_shape({1, 2, 2.5}), ec::invalid_request, "shape[2]");
  EXPECT_ERROR(bad_shape({json(18446744073709551615ull), 2, 2}), ec::invalid_request,
               "shape[0]");
  EXPECT_ERROR(bad_shape({0, 2, 2}), ec::invalid_input, "must not be empty");
  EXPECT_ERROR(bad_shape("1,2,2"), ec::invalid_request, "shape");
  request_limits limits;
  limits.max_instances = 2;
  EXPECT_ERROR(error_of({{"inputs", {fp32_input({3, 2, 2}, json::array())}}},
                        tensor_model(), limits),
               ec::payload_too_large, "over the limit of 2");
}

TEST(OipData, InputsMustBeTheModelsOne) {
  EXPECT_ERROR(error_of(json{{"inputs", json::array()}}), ec::invalid_request,
               "'input' is required");
  EXPECT_ERROR(error_of(json{{"id", "x"}}), ec::invalid_request, "inputs: required");
  auto other = fp32_input({1, 2, 2}, {1, 2, 3, 4});
  other["name"] = "INPUT0";
  EXPECT_ERROR(error_of({{"inputs", {other}}}), ec::invalid_request,
               "unknown input 'INPUT0'");
  const auto input = fp32_input({1, 2, 2}, {1, 2, 3, 4});
  EXPECT_ERROR(error_of({{"inputs", {input, input}}}), ec::invalid_request, "twice");
  auto bytes = input;
  bytes["datatype"] = "BYTES";
  EXPECT_ERROR(error_of({{"inputs", {bytes}}}), ec::invalid_input, "not BYTES");
  json image{{"name", "image"}, {"shape", {1}}, {"datatype", "FP32"}, {"data", {1}}};
  EXPECT_ERROR(error_of({{"inputs", {image}}}, digits_model()), ec::invalid_input,
               "takes BYTES");
  EXPECT_ERROR(error_of(json{{"inputs", {input}}, {"id", 42}}), ec::invalid_request,
               "id: must be a string");
  EXPECT_ERROR(error_of("[1]", std::nullopt), ec::invalid_request, "object");
  EXPECT_ERROR(error_of("{\"inputs\": [", std::nullopt), ec::invalid_json, "");
}

// --- the binary tensor extension -----------------------------------------------------

TEST(OipBinary, FramingErrorsAreBadRequests) {
  const auto header = json{{"inputs",
                            {{{"name", "input"},
                              {"shape", {1, 2, 2}},
                              {"datatype", "FP32"},
                              {"parameters", {{"binary_data_size", 16}}}}}}}
                          .dump();
  const auto values = little_endian<float>({1, 2, 3, 4});
  EXPECT_EQ(parse_oip_infer_request(header + values, header.size(), tensor_model(), {})
                .input.values,
            (std::vector<float>{1, 2, 3, 4}));
  // Short buffer, header past the body, no header at all, leftover bytes.
  EXPECT_ERROR(error_of(header + values.substr(0, 15), header.size()),
               ec::invalid_request, "only 15 bytes");
  EXPECT_ERROR(error_of(header + values, header.size() + 17), ec::invalid_request,
               "past the end");
  EXPECT_ERROR(error_of(header + values, std::nullopt), ec::invalid_json, "NUL");
  EXPECT_ERROR(error_of(header + values + "xy", header.size()), ec::invalid_request,
               "2 bytes of binary data");
  EXPECT_ERROR(error_of(header + values, size_t{0}), ec::invalid_request, "raw binary");
  // A JSON part shorter than the JSON is not JSON.
  EXPECT_ERROR(error_of(header + values, header.size() - 1), ec::invalid_json, "");
}

TEST(OipBinary, SizesMustAddUp) {
  auto with_size = [](json size, const std::string& binary, json extra = json::object()) {
    json input{{"name", "input"},
               {"shape", {1, 2, 2}},
               {"datatype", "FP32"},
               {"parameters", {{"binary_data_size", size}}}};
    input.update(extra);
    const auto header = json{{"inputs", {input}}}.dump();
    return error_of(header + binary, header.size());
  };
  const auto values = little_endian<float>({1, 2, 3, 4});
  EXPECT_ERROR(with_size(12, values.substr(0, 12)), ec::invalid_input, "12 bytes, but");
  EXPECT_ERROR(with_size(12, values), ec::invalid_request, "no input claims them");
  EXPECT_ERROR(with_size(-16, values), ec::invalid_request, "binary_data_size");
  EXPECT_ERROR(with_size(json(18446744073709551615ull), values), ec::invalid_request,
               "binary_data_size");
  EXPECT_ERROR(with_size(9223372036854775807ll, values), ec::invalid_request,
               "only 16 bytes");
  EXPECT_ERROR(with_size("16", values), ec::invalid_request, "binary_data_size");
  EXPECT_ERROR(with_size(16, values, {{"data", {1, 2, 3, 4}}}), ec::invalid_request,
               "exactly one of");
  EXPECT_ERROR(error_of({{"inputs", {typed_input("FP32")}}}), ec::invalid_request,
               "exactly one of");
}

TEST(OipBinary, HeaderLengthParsing) {
  EXPECT_EQ(parse_inference_header_length("123"), 123u);
  for (auto bad : {"", "-1", "+5", "12a", " 12", "99999999999999999999999"})
    EXPECT_ERROR(
        [&] {
          try {
            parse_inference_header_length(bad);
          } catch (const api_error& error) {
            return error;
          }
          return api_error{};
        }(),
        ec::invalid_request, "Inference-Header-Content-Length");
}

// --- image models --------------------------------------------------------------------

tensor v1_digit_batch(int copies) {
  json instances = json::array();
  for (int i = 0; i < copies; ++i)
    instances.push_back({{"image", digit_base64()}});
  return build_input_batch(parse_predict_body(json{{"instances", instances}}.dump(), {}),
                           digits_model().input, {});
}

json image_input(json shape) {
  return {{"name", "image"}, {"shape", shape}, {"datatype", "BYTES"}};
}

TEST(OipImages, Base64InJsonIsPreprocessedAsV1) {
  auto input = image_input({2});
  input["data"] = {digit_base64(), digit_base64()};
  const auto request = parse({{"inputs", {input}}}, digits_model());
  const auto expected = v1_digit_batch(2);
  EXPECT_EQ(request.input.shape, (std::vector<int64_t>{2, 1, 28, 28}));
  EXPECT_EQ(request.input.values, expected.values);
}

TEST(OipImages, RawBytesInBinaryArePreprocessedAsV1) {
  const auto binary = bytes_element(digit_png()) + bytes_element(digit_png());
  const auto request = parse_binary(image_input({2}), binary, digits_model());
  EXPECT_EQ(request.input.values, v1_digit_batch(2).values);
}

TEST(OipImages, BytesFramingErrors) {
  const auto png = digit_png();
  auto framing_error = [](const std::string& binary, int count) {
    try {
      parse_binary(image_input({count}), binary, digits_model());
    } catch (const api_error& error) {
      return error;
    }
    return api_error{};
  };
  // A length prefix cut short, an element past the end, a missing element,
  // bytes left over.
  EXPECT_ERROR(framing_error(bytes_element(png) + "\x01\x00", 2), ec::invalid_input,
               "4-byte length");
  EXPECT_ERROR(framing_error(bytes_element(png).substr(0, png.size()), 1),
               ec::invalid_input, "claims");
  EXPECT_ERROR(framing_error(little_endian<uint32_t>({0xFFFFFFFFu}) + "abc", 1),
               ec::invalid_input, "claims 4294967295");
  EXPECT_ERROR(framing_error(bytes_element(png), 2), ec::invalid_input, "4-byte length");
  EXPECT_ERROR(framing_error(bytes_element(png) + "x", 1), ec::invalid_input,
               "1 bytes are left");
  EXPECT_ERROR(framing_error(bytes_element("not an image"), 1),
               ec::unsupported_media_type, "element 0");
}

TEST(OipImages, JsonElementsMustBeBase64Strings) {
  auto input = image_input({2});
  input["data"] = {digit_base64(), 7};
  EXPECT_ERROR(error_of({{"inputs", {input}}}, digits_model()), ec::invalid_input,
               "must be a string");
  input["data"] = {digit_base64(), "%%%"};
  EXPECT_ERROR(error_of({{"inputs", {input}}}, digits_model()), ec::invalid_input,
               "base64");
  input["data"] = {digit_base64()};
  EXPECT_ERROR(error_of({{"inputs", {input}}}, digits_model()), ec::invalid_input,
               "holds 1 elements");
  input["shape"] = {1, 1};
  EXPECT_ERROR(error_of({{"inputs", {input}}}, digits_model()), ec::invalid_input,
               "expected [-1]");
}

// --- parameters and outputs ----------------------------------------------------------

TEST(OipParameters, TimeoutPriorityAndOutputs) {
  const auto input = fp32_input({1, 2, 2}, {1, 2, 3, 4});
  request_limits limits;
  limits.default_timeout_ms = 777;
  limits.max_timeout_ms = 5000;
  auto request = parse_oip_infer_request(json{{"inputs", {input}}}.dump(), std::nullopt,
                                         tensor_model(), limits);
  EXPECT_EQ(request.timeout_ms, 777);
  EXPECT_EQ(request.priority, 0);
  EXPECT_FALSE(request.output.binary);
  EXPECT_EQ(request.output.classification, 0);
  EXPECT_FALSE(request.id);

  json body{
      {"id", "42"},
      {"inputs", {input}},
      {"parameters", {{"timeout", 1500}, {"priority", 1}, {"binary_data_output", true}}},
      {"outputs", {{{"name", "output"}, {"parameters", {{"classification", 3}}}}}}};
  request = parse_oip_infer_request(body.dump(), std::nullopt, tensor_model(), limits);
  EXPECT_EQ(request.id, "42");
  EXPECT_EQ(request.timeout_ms, 2); // 1500 µs, rounded up
  EXPECT_EQ(request.priority, 1);
  EXPECT_TRUE(request.output.binary);
  EXPECT_EQ(request.output.classification, 3);

  body["parameters"]["timeout"] = 3600000000ll; // an hour: capped
  body["outputs"][0]["parameters"]["binary_data"] = false;
  request = parse_oip_infer_request(body.dump(), std::nullopt, tensor_model(), limits);
  EXPECT_EQ(request.timeout_ms, 5000);
  EXPECT_FALSE(request.output.binary); // the output's own choice wins
}

TEST(OipParameters, BadParametersAndOutputs) {
  const auto input = fp32_input({1, 2, 2}, {1, 2, 3, 4});
  auto with = [&](json extra) {
    json body{{"inputs", {input}}};
    body.update(extra);
    return error_of(body);
  };
  EXPECT_ERROR(with({{"parameters", {{"timeout", -1}}}}), ec::invalid_request,
               "parameters.timeout");
  EXPECT_ERROR(with({{"parameters", {{"priority", "high"}}}}), ec::invalid_request,
               "parameters.priority");
  EXPECT_ERROR(with({{"parameters", {{"priority", -1}}}}), ec::invalid_request,
               "parameters.priority");
  EXPECT_ERROR(with({{"parameters", {{"priority", 1.5}}}}), ec::invalid_request,
               "parameters.priority");
  EXPECT_ERROR(with({{"parameters", {{"binary_data_output", 1}}}}), ec::invalid_request,
               "true or false");
  EXPECT_ERROR(with({{"parameters", 5}}), ec::invalid_request, "must be an object");
  EXPECT_ERROR(with({{"outputs", {{{"name", "OUTPUT0"}}}}}), ec::invalid_request,
               "unknown output 'OUTPUT0'");
  EXPECT_ERROR(with({{"outputs", {{{"name", "output"}}, {{"name", "output"}}}}}),
               ec::invalid_request, "already exists");
  EXPECT_ERROR(with({{"outputs",
                      {{{"name", "output"}, {"parameters", {{"classification", -2}}}}}}}),
               ec::invalid_request, "classification");
  // Parameters the server does not use are ignored.
  EXPECT_NO_THROW(parse({{"inputs", {input}}, {"parameters", {{"sequence_id", 5}}}}));
}

// --- replies ------------------------------------------------------------------------

predict_reply two_rows_reply() {
  predict_reply reply;
  reply.version = "2";
  reply.output.shape = {2, 3};
  reply.output.values = {0.5f, 2.0f, -1.0f, 3.0f, 1.0f, 2.0f};
  return reply;
}

TEST(OipReply, JsonOutput) {
  oip_infer_request request;
  request.id = "42";
  const auto reply = format_oip_infer_reply(two_rows_reply(), tensor_model(), request);
  EXPECT_FALSE(reply.json_length);
  EXPECT_EQ(json::parse(reply.body),
            json({{"model_name", "affine"},
                  {"model_version", "2"},
                  {"id", "42"},
                  {"outputs",
                   {{{"name", "output"},
                     {"shape", {2, 3}},
                     {"datatype", "FP32"},
                     {"data", {0.5, 2.0, -1.0, 3.0, 1.0, 2.0}}}}}}));
  request.id.reset();
  EXPECT_FALSE(
      json::parse(format_oip_infer_reply(two_rows_reply(), tensor_model(), request).body)
          .contains("id"));
}

TEST(OipReply, BinaryOutputRoundTrip) {
  oip_infer_request request;
  request.output.binary = true;
  const auto reply = format_oip_infer_reply(two_rows_reply(), tensor_model(), request);
  ASSERT_TRUE(reply.json_length);
  const auto header = json::parse(reply.body.substr(0, *reply.json_length));
  const auto& output = header["outputs"][0];
  EXPECT_FALSE(output.contains("data"));
  EXPECT_EQ(output["shape"], json({2, 3}));
  EXPECT_EQ(output["parameters"]["binary_data_size"], 24);
  const auto binary = reply.body.substr(*reply.json_length);
  ASSERT_EQ(binary.size(), 24u);
  std::vector<float> values(6);
  std::memcpy(values.data(), binary.data(), binary.size());
  EXPECT_EQ(values, two_rows_reply().output.values);
}

TEST(OipReply, ClassificationTopKPerRow) {
  oip_infer_request request;
  request.output.classification = 2;
  auto spec = tensor_model();
  spec.labels = {"cat", "dog"}; // index 2 has no label
  const auto reply = format_oip_infer_reply(two_rows_reply(), spec, request);
  const auto output = json::parse(reply.body)["outputs"][0];
  EXPECT_EQ(output["datatype"], "BYTES");
  EXPECT_EQ(output["shape"], json({2, 2}));
  EXPECT_EQ(output["data"], json({"2:1:dog", "0.5:0:cat", "3:0:cat", "2:2"}));
  // k over the row size is the row size; binary BYTES are length-prefixed.
  request.output.classification = 10;
  request.output.binary = true;
  const auto binary = format_oip_infer_reply(two_rows_reply(), spec, request);
  const auto header = json::parse(binary.body.substr(0, *binary.json_length));
  EXPECT_EQ(header["outputs"][0]["shape"], json({2, 3}));
  const auto tail = binary.body.substr(*binary.json_length);
  EXPECT_EQ(header["outputs"][0]["parameters"]["binary_data_size"], tail.size());
  EXPECT_EQ(tail.substr(0, 11), bytes_element("2:1:dog"));
}

TEST(OipReply, OutputNotMatchingItsShapeIsInternal) {
  auto reply = two_rows_reply();
  reply.output.values.pop_back();
  try {
    format_oip_infer_reply(reply, tensor_model(), {});
    ADD_FAILURE() << "no error";
  } catch (const api_error& error) {
    EXPECT_EQ(error.code, ec::internal);
    EXPECT_EQ(standard_error_status(error.code), 500);
  }
}

// --- metadata ------------------------------------------------------------------------

TEST(OipMetadata, ModelAndServer) {
  EXPECT_EQ(oip_model_metadata(tensor_model(), {"1", "2"}),
            json({{"name", "affine"},
                  {"versions", {"1", "2"}},
                  {"platform", "pytorch_libtorch"},
                  {"inputs",
                   {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {-1, 2, 2}}}}},
                  {"outputs",
                   {{{"name", "output"}, {"datatype", "FP32"}, {"shape", {-1, -1}}}}}}));
  const auto digits = oip_model_metadata(digits_model(), {"1"});
  EXPECT_EQ(digits["inputs"],
            json({{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {-1}}}}));
  EXPECT_EQ(digits["outputs"][0]["shape"], json({-1, 10}));
  const auto server = oip_server_metadata("0.1.0");
  EXPECT_EQ(server["name"], "actorserve");
  EXPECT_EQ(server["version"], "0.1.0");
  for (auto extension :
       {"binary_tensor_data", "classification", "model_repository", "schedule_policy"})
    EXPECT_NE(
        std::find(server["extensions"].begin(), server["extensions"].end(), extension),
        server["extensions"].end())
        << extension;
}

TEST(OipErrors, ImageErrorsAreBadRequests) {
  auto input = image_input({1});
  input["data"] = {"aGVsbG8="}; // "hello": not an image
  const auto error = error_of({{"inputs", {input}}}, digits_model());
  EXPECT_EQ(error.code, ec::unsupported_media_type);
  EXPECT_EQ(standard_error_status(error.code), 400);
  EXPECT_EQ(standard_error_body(error)["error"], error.message);
}

} // namespace
} // namespace actorserve
