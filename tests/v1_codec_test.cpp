#include "protocols/v1_codec.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

namespace actorserve {
namespace {

using json = nlohmann::json;

std::string base64(const std::string& bytes) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) |
                 (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (bytes.size() - i == 1) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (bytes.size() - i == 2) {
    uint32_t v =
        (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// A 3 wide, 2 high PNG whose every BGR pixel is (b, g, r).
std::string flat_png(unsigned char b, unsigned char g, unsigned char r) {
  cv::Mat image(2, 3, CV_8UC3, cv::Scalar(b, g, r));
  std::vector<unsigned char> buffer;
  EXPECT_TRUE(cv::imencode(".png", image, buffer));
  return std::string(buffer.begin(), buffer.end());
}

input_spec image_spec() {
  input_spec spec;
  spec.type = input_kind::image;
  spec.height = 2;
  spec.width = 3;
  spec.channels = 3;
  spec.color = color_order::rgb;
  spec.mean = {0.0f, 0.0f, 0.0f};
  spec.std = {1.0f, 1.0f, 1.0f};
  spec.shape = {3, 2, 3};
  return spec;
}

input_spec tensor_spec(std::vector<int64_t> shape) {
  input_spec spec;
  spec.type = input_kind::tensor;
  spec.shape = std::move(shape);
  return spec;
}

api_error parse_error(const std::string& body, const request_limits& limits = {}) {
  try {
    parse_predict_body(body, limits);
  } catch (const api_error& error) {
    return error;
  }
  ADD_FAILURE() << "no error for " << body.substr(0, 200);
  return {};
}

api_error batch_error(const json& body, const input_spec& spec,
                      const request_limits& limits = {}) {
  try {
    build_input_batch(parse_predict_body(body.dump(), limits), spec, limits);
  } catch (const api_error& error) {
    return error;
  }
  ADD_FAILURE() << "no error for " << body.dump().substr(0, 200);
  return {};
}

#define EXPECT_API_ERROR(call, expected_code, expected_field)                            \
  do {                                                                                   \
    const api_error error_ = (call);                                                     \
    EXPECT_EQ(error_.code, expected_code) << error_.message;                             \
    EXPECT_EQ(error_.field, expected_field) << error_.message;                           \
    EXPECT_FALSE(error_.message.empty());                                                \
  } while (false)

// --- parse_predict_body --------------------------------------------------------

TEST(ParsePredictBody, NotJsonIsInvalidJson) {
  EXPECT_API_ERROR(parse_error(""), ec::invalid_json, "");
  EXPECT_API_ERROR(parse_error("{"), ec::invalid_json, "");
  EXPECT_API_ERROR(parse_error("nope"), ec::invalid_json, "");
  EXPECT_API_ERROR(parse_error("{\"instances\": [{}]} trailing"), ec::invalid_json, "");
  // nlohmann would stop at a NUL byte and ignore what follows.
  EXPECT_API_ERROR(parse_error(std::string("{\"instances\": [{}]}\0junk", 24)),
                   ec::invalid_json, "");
  EXPECT_API_ERROR(parse_error("{'instances': []}"), ec::invalid_json, "");
  const auto error = parse_error("{\"instances\": [}");
  EXPECT_EQ(error.message.rfind("body is not valid JSON: ", 0), 0u) << error.message;
  EXPECT_EQ(error.message.find("[json.exception"), std::string::npos) << error.message;
}

TEST(ParsePredictBody, ParserMessageIsBounded) {
  const auto error = parse_error("{\"instances\": \"" + std::string(1 << 20, 'a'));
  EXPECT_EQ(error.code, ec::invalid_json);
  EXPECT_LT(error.message.size(), 400u);
}

TEST(ParsePredictBody, ErrorsAreValidUtf8) {
  // Invalid UTF-8 in the body, quoted back by the parser.
  auto error = parse_error("{\"instances\": [{\"image\": \"\xff\xfe\"}]}");
  EXPECT_EQ(error.code, ec::invalid_json);
  EXPECT_NO_THROW(json(error.message).dump());
  // A long unknown key with multi-byte characters is cut on a boundary.
  std::string key;
  for (int i = 0; i < 200; ++i)
    key += "\xc3\xa9"; // é
  error = parse_error("{\"instances\": [{}], \"" + key + "\": 1}");
  EXPECT_EQ(error.code, ec::invalid_request);
  EXPECT_LT(error.field.size(), 110u);
  EXPECT_EQ(error.field.rfind("\xc3\xa9\xc3\xa9", 0), 0u);
  EXPECT_NO_THROW(json(error.field).dump());
  EXPECT_NO_THROW(json(error.message).dump());
}

TEST(ParsePredictBody, BodyMustBeAnObject) {
  EXPECT_API_ERROR(parse_error("[{\"instances\": []}]"), ec::invalid_request, "");
  EXPECT_API_ERROR(parse_error("42"), ec::invalid_request, "");
  EXPECT_API_ERROR(parse_error("\"instances\""), ec::invalid_request, "");
  EXPECT_API_ERROR(parse_error("null"), ec::invalid_request, "");
}

TEST(ParsePredictBody, InstancesSchema) {
  EXPECT_API_ERROR(parse_error("{}"), ec::invalid_request, "instances");
  EXPECT_API_ERROR(parse_error("{\"instances\": []}"), ec::invalid_request, "instances");
  EXPECT_API_ERROR(parse_error("{\"instances\": {}}"), ec::invalid_request, "instances");
  EXPECT_API_ERROR(parse_error("{\"instances\": \"x\"}"), ec::invalid_request,
                   "instances");
  EXPECT_API_ERROR(parse_error("{\"instances\": null}"), ec::invalid_request,
                   "instances");
  EXPECT_API_ERROR(parse_error("{\"instances\": [{}, 3]}"), ec::invalid_request,
                   "instances[1]");
  EXPECT_API_ERROR(parse_error("{\"instances\": [[1, 2]]}"), ec::invalid_request,
                   "instances[0]");
  EXPECT_EQ(parse_error("{\"instances\": [{}, {}, \"x\"]}").message,
            "instances[2]: must be an object");
}

TEST(ParsePredictBody, UnknownTopLevelKeyIsNamed) {
  EXPECT_API_ERROR(parse_error("{\"instances\": [{}], \"inputs\": 1}"),
                   ec::invalid_request, "inputs");
  EXPECT_API_ERROR(parse_error("{\"signature_name\": \"x\", \"instances\": [{}]}"),
                   ec::invalid_request, "signature_name");
}

TEST(ParsePredictBody, TooManyInstances) {
  request_limits limits;
  limits.max_instances = 3;
  EXPECT_NO_THROW(parse_predict_body("{\"instances\": [{}, {}, {}]}", limits));
  EXPECT_API_ERROR(parse_error("{\"instances\": [{}, {}, {}, {}]}", limits),
                   ec::payload_too_large, "instances");
}

TEST(ParsePredictBody, ParametersDefaultsAndValues) {
  request_limits limits;
  limits.default_timeout_ms = 1234;
  auto body =
      parse_predict_body("{\"instances\": [{\"data\": [1]}, {\"data\": [2]}]}", limits);
  EXPECT_EQ(body.instances.size(), 2u);
  EXPECT_EQ(body.instances[1]["data"][0], 2);
  EXPECT_EQ(body.parameters.output.top_k, 0);
  EXPECT_FALSE(body.parameters.output.raw_output);
  EXPECT_EQ(body.parameters.timeout_ms, 1234);
  EXPECT_EQ(body.parameters.priority, 0);

  body = parse_predict_body(
      "{\"instances\": [{}], \"parameters\": {\"top_k\": 3, \"raw_output\": true, "
      "\"timeout_ms\": 5000, \"priority\": 2}}",
      limits);
  EXPECT_EQ(body.parameters.output.top_k, 3);
  EXPECT_TRUE(body.parameters.output.raw_output);
  EXPECT_EQ(body.parameters.timeout_ms, 5000);
  EXPECT_EQ(body.parameters.priority, 2);

  body = parse_predict_body("{\"instances\": [{}], \"parameters\": {}}", limits);
  EXPECT_EQ(body.parameters.timeout_ms, 1234);
}

TEST(ParsePredictBody, BadParameters) {
  auto with = [](const std::string& parameters) {
    return parse_error("{\"instances\": [{}], \"parameters\": " + parameters + "}");
  };
  EXPECT_API_ERROR(with("[]"), ec::invalid_request, "parameters");
  EXPECT_API_ERROR(with("null"), ec::invalid_request, "parameters");
  EXPECT_API_ERROR(with("{\"temperature\": 1}"), ec::invalid_request,
                   "parameters.temperature");
  EXPECT_API_ERROR(with("{\"top_k\": 0}"), ec::invalid_request, "parameters.top_k");
  EXPECT_API_ERROR(with("{\"top_k\": -1}"), ec::invalid_request, "parameters.top_k");
  EXPECT_API_ERROR(with("{\"top_k\": \"x\"}"), ec::invalid_request, "parameters.top_k");
  EXPECT_API_ERROR(with("{\"top_k\": 2.5}"), ec::invalid_request, "parameters.top_k");
  EXPECT_API_ERROR(with("{\"top_k\": true}"), ec::invalid_request, "parameters.top_k");
  EXPECT_API_ERROR(with("{\"top_k\": 99999999999999999999}"), ec::invalid_request,
                   "parameters.top_k");
  EXPECT_API_ERROR(with("{\"raw_output\": 1}"), ec::invalid_request,
                   "parameters.raw_output");
  EXPECT_API_ERROR(with("{\"timeout_ms\": 0}"), ec::invalid_request,
                   "parameters.timeout_ms");
  EXPECT_API_ERROR(with("{\"timeout_ms\": 300001}"), ec::invalid_request,
                   "parameters.timeout_ms");
  EXPECT_API_ERROR(with("{\"timeout_ms\": 18446744073709551615}"), ec::invalid_request,
                   "parameters.timeout_ms");
  EXPECT_API_ERROR(with("{\"timeout_ms\": \"100\"}"), ec::invalid_request,
                   "parameters.timeout_ms");
  EXPECT_API_ERROR(with("{\"priority\": -1}"), ec::invalid_request,
                   "parameters.priority");
  EXPECT_API_ERROR(with("{\"priority\": 1.5}"), ec::invalid_request,
                   "parameters.priority");
  EXPECT_API_ERROR(with("{\"priority\": \"high\"}"), ec::invalid_request,
                   "parameters.priority");
  EXPECT_API_ERROR(with("{\"priority\": 2147483648}"), ec::invalid_request,
                   "parameters.priority");
  EXPECT_EQ(with("{\"top_k\": 0}").message,
            "parameters.top_k: must be an integer in 1..2147483647");
  EXPECT_EQ(with("{\"priority\": -1}").message,
            "parameters.priority: must be an integer in 0..2147483647");
  EXPECT_NO_THROW(parse_predict_body(
      "{\"instances\": [{}], \"parameters\": {\"timeout_ms\": 300000}}", {}));
}

std::string nested(const std::string& open, const std::string& close, int depth) {
  std::string body;
  for (int i = 0; i < depth; ++i)
    body += open;
  for (int i = 0; i < depth; ++i)
    body += close;
  return body;
}

TEST(ParsePredictBody, DeepNestingIsInvalidJson) {
  EXPECT_API_ERROR(parse_error(std::string(100000, '[')), ec::invalid_json, "");
  EXPECT_API_ERROR(parse_error(nested("[", "]", 100000)), ec::invalid_json, "");
  EXPECT_API_ERROR(parse_error(std::string(1000000, '[')), ec::invalid_json, "");
  EXPECT_API_ERROR(parse_error(nested("{\"a\":", "}", 100000)), ec::invalid_json, "");
  // The message names the limit.
  EXPECT_NE(parse_error(std::string(100000, '[')).message.find("64"), std::string::npos);
}

TEST(ParsePredictBody, DepthLimitIsExact) {
  request_limits limits;
  limits.max_json_depth = 5;
  // body (1) > instances (2) > instance (3) > data (4) > row (5)
  EXPECT_NO_THROW(parse_predict_body("{\"instances\": [{\"data\": [[1]]}]}", limits));
  EXPECT_API_ERROR(parse_error("{\"instances\": [{\"data\": [[[1]]]}]}", limits),
                   ec::invalid_json, "");
  EXPECT_API_ERROR(parse_error("{\"instances\": [{\"data\": [[{}]]}]}", limits),
                   ec::invalid_json, "");
}

TEST(ParsePredictBody, KeepsTheDocumentIntact) {
  const json original = {
      {"instances",
       {{{"data", {{1.5, -2, 3e10}, {0, 1, 2}}}}, {{"data", {{"s", nullptr, true}}}}}},
      {"parameters", {{"top_k", 1}}}};
  const auto body = parse_predict_body(original.dump(), {});
  EXPECT_EQ(body.instances, original["instances"]);
}

// --- build_input_batch: images --------------------------------------------------

TEST(BuildInputBatch, ImageBatchIsNchwInInstanceOrder) {
  const json body = {{"instances",
                      {{{"image", base64(flat_png(0, 0, 255))}},    // red
                       {{"image", base64(flat_png(255, 0, 0))}}}}}; // blue
  const auto batch =
      build_input_batch(parse_predict_body(body.dump(), {}), image_spec(), {});
  ASSERT_EQ(batch.shape, (std::vector<int64_t>{2, 3, 2, 3}));
  ASSERT_EQ(batch.values.size(), 36u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_FLOAT_EQ(batch.values[i], 1.0f);           // first image, R
    EXPECT_FLOAT_EQ(batch.values[12 + i], 0.0f);      // first image, B
    EXPECT_FLOAT_EQ(batch.values[18 + i], 0.0f);      // second image, R
    EXPECT_FLOAT_EQ(batch.values[18 + 12 + i], 1.0f); // second image, B
  }
}

TEST(BuildInputBatch, ImageModelRejectsDataKey) {
  const json body = {{"instances", {{{"data", {1, 2}}}}}};
  const auto error = batch_error(body, image_spec());
  EXPECT_EQ(error.code, ec::invalid_request);
  EXPECT_EQ(error.field, "instances[0].data");
  EXPECT_NE(error.message.find("image"), std::string::npos) << error.message;
}

TEST(BuildInputBatch, ImageInstanceSchema) {
  const auto png = base64(flat_png(1, 2, 3));
  EXPECT_API_ERROR(
      batch_error({{"instances", {{{"image", png}}, json::object()}}}, image_spec()),
      ec::invalid_request, "instances[1].image");
  EXPECT_API_ERROR(batch_error({{"instances", {{{"image", 42}}}}}, image_spec()),
                   ec::invalid_request, "instances[0].image");
  EXPECT_API_ERROR(
      batch_error({{"instances", {{{"image", png}, {"name", "x"}}}}}, image_spec()),
      ec::invalid_request, "instances[0].name");
}

TEST(BuildInputBatch, BadBase64NamesTheInstance) {
  const json body = {
      {"instances",
       {{{"image", base64(flat_png(1, 2, 3))}}, {{"image", "not base64!"}}}}};
  const auto error = batch_error(body, image_spec());
  EXPECT_EQ(error.code, ec::invalid_input);
  EXPECT_EQ(error.field, "instances[1].image");
  EXPECT_EQ(error.message, "instances[1].image: not valid base64");
}

TEST(BuildInputBatch, ImageErrorsCarryTheField) {
  const json gif = {{"instances", {{{"image", base64("GIF89a\x01\x00\x01\x00")}}}}};
  const auto error = batch_error(gif, image_spec());
  EXPECT_EQ(error.code, ec::unsupported_media_type);
  EXPECT_EQ(error.field, "instances[0].image");
  EXPECT_EQ(error.message, "instances[0].image: image is not JPEG or PNG");

  request_limits limits;
  limits.max_image_pixels = 5; // the PNG has 6
  EXPECT_API_ERROR(batch_error({{"instances", {{{"image", base64(flat_png(1, 2, 3))}}}}},
                               image_spec(), limits),
                   ec::payload_too_large, "instances[0].image");

  const auto truncated = flat_png(1, 2, 3).substr(0, 40);
  EXPECT_API_ERROR(
      batch_error({{"instances", {{{"image", base64(truncated)}}}}}, image_spec()),
      ec::invalid_input, "instances[0].image");
}

// --- build_input_batch: tensors -------------------------------------------------

TEST(BuildInputBatch, TensorBatchValuesInOrder) {
  const json body = {
      {"instances",
       {{{"data", {{1, 2, 3}, {4, 5, 6}}}}, {{"data", {{-1.5, 0.25, 1e3}, {7, 8, 9}}}}}}};
  const auto batch =
      build_input_batch(parse_predict_body(body.dump(), {}), tensor_spec({2, 3}), {});
  EXPECT_EQ(batch.shape, (std::vector<int64_t>{2, 2, 3}));
  EXPECT_EQ(batch.values,
            (std::vector<float>{1, 2, 3, 4, 5, 6, -1.5f, 0.25f, 1000, 7, 8, 9}));
}

TEST(BuildInputBatch, TensorOneDimensional) {
  const json body = {{"instances", {{{"data", {0.5, 1}}}}}};
  const auto batch =
      build_input_batch(parse_predict_body(body.dump(), {}), tensor_spec({2}), {});
  EXPECT_EQ(batch.shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(batch.values, (std::vector<float>{0.5f, 1.0f}));
}

TEST(BuildInputBatch, TensorWrongShape) {
  const json body = {
      {"instances", {{{"data", {{1, 2}, {3, 4}}}}, {{"data", {{1, 2, 3}, {4, 5, 6}}}}}}};
  const auto error = batch_error(body, tensor_spec({2, 2}));
  EXPECT_EQ(error.code, ec::invalid_input);
  EXPECT_EQ(error.field, "instances[1].data");
  EXPECT_EQ(error.message, "instances[1].data: expected shape [2, 2], got [2, 3]");

  EXPECT_API_ERROR(
      batch_error({{"instances", {{{"data", {1, 2, 3, 4}}}}}}, tensor_spec({2, 2})),
      ec::invalid_input, "instances[0].data");
  EXPECT_API_ERROR(batch_error({{"instances", {{{"data", 4}}}}}, tensor_spec({2, 2})),
                   ec::invalid_input, "instances[0].data");
  EXPECT_API_ERROR(batch_error({{"instances", {{{"data", {{{1}, {2}}, {{3}, {4}}}}}}}},
                               tensor_spec({2, 2})),
                   ec::invalid_input, "instances[0].data");
}

TEST(BuildInputBatch, TensorRaggedArrays) {
  const auto error =
      batch_error({{"instances", {{{"data", {{1, 2}, {3}}}}}}}, tensor_spec({2, 2}));
  EXPECT_EQ(error.code, ec::invalid_input);
  EXPECT_EQ(error.field, "instances[0].data");
  EXPECT_NE(error.message.find("instances[0].data[1]"), std::string::npos)
      << error.message;
  EXPECT_API_ERROR(
      batch_error({{"instances", {{{"data", {{1, 2}, {3, {4}}}}}}}}, tensor_spec({2, 2})),
      ec::invalid_input, "instances[0].data");
}

TEST(BuildInputBatch, TensorLeavesMustBeNumbers) {
  for (const json& leaf : {json("1"), json(true), json(nullptr), json::object()}) {
    const json body = {{"instances", {{{"data", {{1, 2}, {3, leaf}}}}}}};
    const auto error = batch_error(body, tensor_spec({2, 2}));
    EXPECT_EQ(error.code, ec::invalid_input) << leaf;
    EXPECT_EQ(error.field, "instances[0].data");
    EXPECT_NE(error.message.find("instances[0].data[1][1] must be a number"),
              std::string::npos)
        << error.message;
  }
}

TEST(BuildInputBatch, TensorValuesOutsideFloatRange) {
  const auto error = batch_error(json::parse("{\"instances\": [{\"data\": [1e39, 0]}]}"),
                                 tensor_spec({2}));
  EXPECT_EQ(error.code, ec::invalid_input);
  EXPECT_EQ(error.field, "instances[0].data");
}

TEST(BuildInputBatch, TensorModelRejectsImageKey) {
  EXPECT_API_ERROR(batch_error({{"instances", {{{"image", "Zm9v"}}}}}, tensor_spec({2})),
                   ec::invalid_request, "instances[0].image");
  EXPECT_API_ERROR(batch_error({{"instances", {json::object()}}}, tensor_spec({2})),
                   ec::invalid_request, "instances[0].data");
}

// --- format_predictions ---------------------------------------------------------

model_spec classifier(std::vector<std::string> labels = {"cat", "dog", "bird"},
                      int32_t top_k = 5) {
  model_spec spec;
  spec.name = "animals";
  spec.output.type = output_kind::classification;
  spec.output.top_k = top_k;
  spec.labels = std::move(labels);
  return spec;
}

TEST(FormatPredictions, SoftmaxTopKWithLabels) {
  const tensor output{{1, 3}, {1.0f, 2.0f, 3.0f}};
  const auto predictions = format_predictions(output, classifier(), {});
  ASSERT_EQ(predictions.size(), 1u);
  const auto& p = predictions[0];
  const double sum = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_EQ(p["label"], "bird");
  EXPECT_EQ(p["index"], 2);
  EXPECT_NEAR(p["score"].get<double>(), std::exp(3.0) / sum, 1e-6);
  EXPECT_NEAR(p["score"].get<double>(), 0.66524096, 1e-6);
  ASSERT_EQ(p["top_k"].size(), 3u); // top_k 5 clamps to the row size
  EXPECT_EQ(p["top_k"][0],
            (json{{"label", "bird"}, {"index", 2}, {"score", p["score"]}}));
  EXPECT_EQ(p["top_k"][1]["label"], "dog");
  EXPECT_EQ(p["top_k"][1]["index"], 1);
  EXPECT_NEAR(p["top_k"][1]["score"].get<double>(), 0.24472847, 1e-6);
  EXPECT_EQ(p["top_k"][2]["label"], "cat");
  EXPECT_NEAR(p["top_k"][2]["score"].get<double>(), 0.09003057, 1e-6);
  EXPECT_FALSE(p.contains("output"));
}

TEST(FormatPredictions, TopKFromParametersOverridesSpec) {
  const tensor output{{1, 3}, {0.1f, 0.3f, 0.2f}};
  output_options parameters;
  parameters.top_k = 2;
  auto p = format_predictions(output, classifier(), parameters)[0];
  ASSERT_EQ(p["top_k"].size(), 2u);
  EXPECT_EQ(p["top_k"][0]["index"], 1);
  EXPECT_EQ(p["top_k"][1]["index"], 2);

  p = format_predictions(output, classifier({"cat", "dog", "bird"}, 1), {})[0];
  ASSERT_EQ(p["top_k"].size(), 1u);
  EXPECT_EQ(p["label"], "dog");

  parameters.top_k = 1000;
  EXPECT_EQ(format_predictions(output, classifier(), parameters)[0]["top_k"].size(), 3u);
}

TEST(FormatPredictions, TiesGoToTheLowerIndex) {
  const tensor output{{1, 5}, {0.0f, 5.0f, 1.0f, 5.0f, 0.0f}};
  const auto p = format_predictions(output, classifier({}), {})[0];
  std::vector<int> order;
  for (const auto& entry : p["top_k"])
    order.push_back(entry["index"]);
  EXPECT_EQ(order, (std::vector<int>{1, 3, 2, 0, 4}));
}

TEST(FormatPredictions, LabelsFallBackToIndices) {
  const tensor output{{1, 4}, {0.0f, 0.0f, 0.0f, 9.0f}};
  const auto p = format_predictions(output, classifier({"a", "b"}), {})[0];
  EXPECT_EQ(p["label"], "3");
  EXPECT_EQ(p["index"], 3);
  EXPECT_EQ(p["top_k"][1]["label"], "a");
}

TEST(FormatPredictions, RawOutputAddsTheRow) {
  const tensor output{{2, 3}, {1.0f, 2.0f, 3.0f, 0.5f, -0.25f, 0.0f}};
  output_options parameters;
  parameters.raw_output = true;
  const auto predictions = format_predictions(output, classifier(), parameters);
  ASSERT_EQ(predictions.size(), 2u);
  EXPECT_EQ(predictions[0]["output"], (json{1.0, 2.0, 3.0}));
  EXPECT_EQ(predictions[1]["output"], (json{0.5, -0.25, 0.0}));
  EXPECT_EQ(predictions[1]["label"], "cat");
}

TEST(FormatPredictions, StableForLargeLogits) {
  const tensor output{{1, 3}, {1000.0f, 1000.0f, -1000.0f}};
  const auto p = format_predictions(output, classifier(), {})[0];
  EXPECT_NEAR(p["score"].get<double>(), 0.5, 1e-12);
  EXPECT_NEAR(p["top_k"][1]["score"].get<double>(), 0.5, 1e-12);
  EXPECT_NEAR(p["top_k"][2]["score"].get<double>(), 0.0, 1e-12);
  EXPECT_EQ(p["index"], 0);
}

TEST(FormatPredictions, NanLogitsAreAnInternalError) {
  const tensor output{{1, 2}, {std::nanf(""), 1.0f}};
  try {
    format_predictions(output, classifier(), {});
    ADD_FAILURE() << "no error";
  } catch (const api_error& error) {
    EXPECT_EQ(error.code, ec::internal);
  }
}

TEST(FormatPredictions, RawOutputAndShape) {
  model_spec spec;
  spec.output.type = output_kind::raw;
  tensor output{{2, 2, 3}, {}};
  for (int i = 0; i < 12; ++i)
    output.values.push_back(i * 0.5f);
  const auto predictions = format_predictions(output, spec, {});
  ASSERT_EQ(predictions.size(), 2u);
  EXPECT_EQ(predictions[0]["shape"], (json{2, 3}));
  EXPECT_EQ(predictions[0]["output"], (json{0.0, 0.5, 1.0, 1.5, 2.0, 2.5}));
  EXPECT_EQ(predictions[1]["output"], (json{3.0, 3.5, 4.0, 4.5, 5.0, 5.5}));
  EXPECT_FALSE(predictions[0].contains("label"));
}

TEST(FormatPredictions, RawFloatsBecomeDoubles) {
  model_spec spec;
  const tensor output{{1, 1}, {0.1f}};
  const auto predictions = format_predictions(output, spec, {});
  EXPECT_EQ(predictions[0]["output"][0].get<double>(), static_cast<double>(0.1f));
  EXPECT_EQ(predictions[0]["shape"], (json{1}));
}

TEST(FormatPredictions, ShapeAndValuesMustAgree) {
  const tensor output{{2, 3}, {1.0f, 2.0f, 3.0f}};
  try {
    format_predictions(output, classifier(), {});
    ADD_FAILURE() << "no error";
  } catch (const api_error& error) {
    EXPECT_EQ(error.code, ec::internal);
  }
}

} // namespace
} // namespace actorserve
