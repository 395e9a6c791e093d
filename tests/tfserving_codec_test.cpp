#include "protocols/tfserving_codec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocols/standard_errors.hpp"
#include "protocols/v1_codec.hpp"
#include "tests/codec_fixtures.hpp"

namespace actorserve {
namespace {

using json = nlohmann::json;

using testing::digit_base64;
using testing::digits_model;
using testing::tensor_model;

tfserving_predict_request parse(const json& body, const model_spec& spec = tensor_model(),
                                const request_limits& limits = {}) {
  return parse_tfserving_predict(body.dump(), spec, limits);
}

api_error error_of(const std::string& body, const model_spec& spec = tensor_model(),
                   const request_limits& limits = {}) {
  try {
    parse_tfserving_predict(body, spec, limits);
  } catch (const api_error& error) {
    return error;
  }
  ADD_FAILURE() << "no error for " << body.substr(0, 200);
  return {};
}

const json two_rows = {{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}};

TEST(TfservingPredict, RowAndColumnarGiveTheSameTensor) {
  const auto row = parse({{"instances", two_rows}});
  EXPECT_EQ(row.format, tfserving_format::row);
  EXPECT_EQ(row.input.shape, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(row.input.values, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
  for (const auto& body :
       {json{{"inputs", two_rows}}, json{{"inputs", {{"input", two_rows}}}},
        json{{"inputs", two_rows}, {"signature_name", "serving_default"}}}) {
    const auto columnar = parse(body);
    EXPECT_EQ(columnar.format, tfserving_format::columnar);
    EXPECT_EQ(columnar.input.shape, row.input.shape);
    EXPECT_EQ(columnar.input.values, row.input.values);
  }
  // The list-of-objects row form, with the one named input.
  const auto named =
      parse({{"instances", {{{"input", two_rows[0]}}, {{"input", two_rows[1]}}}}});
  EXPECT_EQ(named.input.values, row.input.values);
}

TEST(TfservingPredict, ImagesInEveryFormAreThoseOfV1) {
  const auto b64 = digit_base64();
  const json v1{{"instances", {{{"image", b64}}}}};
  const auto expected =
      build_input_batch(parse_predict_body(v1.dump(), {}), digits_model().input, {});
  for (const auto& body : {json{{"instances", {{{"b64", b64}}}}},
                           json{{"instances", {{{"image", {{"b64", b64}}}}}}},
                           json{{"inputs", {{{"b64", b64}}}}},
                           json{{"inputs", {{"image", {{{"b64", b64}}}}}}}}) {
    const auto request = parse(body, digits_model());
    EXPECT_EQ(request.input.shape, (std::vector<int64_t>{1, 1, 28, 28}))
        << body.dump(-1).substr(0, 80);
    EXPECT_EQ(request.input.values, expected.values);
  }
}

TEST(TfservingPredict, MalformedBodies) {
  EXPECT_ERROR(error_of("{"), ec::invalid_json, "");
  EXPECT_ERROR(error_of("[]"), ec::invalid_request, "object");
  EXPECT_ERROR(error_of("{}"), ec::invalid_request, "exactly one of");
  EXPECT_ERROR(error_of(json{{"instances", two_rows}, {"inputs", two_rows}}.dump()),
               ec::invalid_request, "exactly one of");
  EXPECT_ERROR(error_of(R"({"instances": []})"), ec::invalid_request,
               "must not be empty");
  EXPECT_ERROR(error_of(R"({"instances": 5})"), ec::invalid_request, "list");
  EXPECT_ERROR(error_of(R"({"instances": [[1, 2, 3, 4]]})"), ec::invalid_input,
               "expected shape [2, 2]");
  EXPECT_ERROR(error_of(R"({"instances": [[[1, 2], [3, "x"]]]})"), ec::invalid_input,
               "must be a number");
  EXPECT_ERROR(error_of(R"({"instances": [{"input": [[1, 2], [3, 4]], "x": 1}]})"),
               ec::invalid_request, "holds only \"input\"");
  EXPECT_ERROR(error_of(R"({"instances": [[[1, 2], [3, 4]]], "signature_name": "x"})"),
               ec::invalid_request, "unknown signature 'x'");
  EXPECT_ERROR(error_of(R"({"instances": [{"b64": "%%"}]})", digits_model()),
               ec::invalid_input, "base64");
  EXPECT_ERROR(error_of(R"({"instances": [[1, 2]]})", digits_model()),
               ec::invalid_request, "b64");
  EXPECT_ERROR(error_of(R"({"instances": [{"b64": "aGVsbG8="}]})", digits_model()),
               ec::unsupported_media_type, "instances[0]");
  request_limits limits;
  limits.max_instances = 1;
  EXPECT_ERROR(error_of(json{{"inputs", two_rows}}.dump(), tensor_model(), limits),
               ec::payload_too_large, "over the limit of 1");
}

TEST(TfservingPredict, PredictionsAreNestedToTheOutputShape) {
  predict_reply reply;
  reply.version = "1";
  reply.output.shape = {2, 2, 2};
  reply.output.values = {1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(format_tfserving_predict(reply, tfserving_format::row),
            json({{"predictions", two_rows}}));
  EXPECT_EQ(format_tfserving_predict(reply, tfserving_format::columnar),
            json({{"outputs", two_rows}, {"predictions", two_rows}}));
  reply.output.shape = {3};
  reply.output.values = {1.5, 2, 3};
  EXPECT_EQ(format_tfserving_predict(reply, tfserving_format::row),
            json({{"predictions", {1.5, 2, 3}}}));
  reply.output.values = {1};
  EXPECT_THROW(format_tfserving_predict(reply, tfserving_format::row), api_error);
}

TEST(TfservingStatus, StatesAndVersions) {
  model_status status;
  status.name = "digits";
  status.versions = {{"1", version_state::available, "", 10, ""},
                     {"2", version_state::loading, "", 0, ""},
                     {"3", version_state::draining, "", 0, ""},
                     {"4", version_state::failed, "bad model.pt", 0, ""},
                     {"5", version_state::unloaded, "", 0, ""}};
  const auto all = tfserving_model_status(status, "")["model_version_status"];
  ASSERT_EQ(all.size(), 5u);
  std::vector<std::string> states;
  for (const auto& version : all)
    states.push_back(version["state"]);
  EXPECT_EQ(states, (std::vector<std::string>{"AVAILABLE", "LOADING", "UNLOADING", "END",
                                              "END"}));
  EXPECT_EQ(all[0]["status"], json({{"error_code", "OK"}, {"error_message", ""}}));
  EXPECT_EQ(all[3]["status"],
            json({{"error_code", "UNKNOWN"}, {"error_message", "bad model.pt"}}));
  const auto one = tfserving_model_status(status, "2")["model_version_status"];
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]["version"], "2");
  try {
    tfserving_model_status(status, "9");
    ADD_FAILURE() << "no error for an unknown version";
  } catch (const api_error& error) {
    EXPECT_EQ(error.code, ec::version_not_found);
    EXPECT_EQ(standard_error_status(error.code), 404);
  }
}

TEST(TfservingMetadata, SignatureServingDefault) {
  const auto metadata = tfserving_model_metadata(tensor_model(), "1");
  EXPECT_EQ(metadata["model_spec"],
            json({{"name", "affine"}, {"signature_name", ""}, {"version", "1"}}));
  const auto& signature =
      metadata["metadata"]["signature_def"]["signature_def"]["serving_default"];
  EXPECT_EQ(signature["method_name"], "tensorflow/serving/predict");
  const auto& input = signature["inputs"]["input"];
  EXPECT_EQ(input["dtype"], "DT_FLOAT");
  EXPECT_EQ(input["tensor_shape"]["dim"], json({{{"size", "-1"}, {"name", ""}},
                                                {{"size", "2"}, {"name", ""}},
                                                {{"size", "2"}, {"name", ""}}}));
  const auto image = tfserving_model_metadata(digits_model(), "2");
  const auto& image_signature =
      image["metadata"]["signature_def"]["signature_def"]["serving_default"];
  EXPECT_EQ(image_signature["inputs"]["image"]["dtype"], "DT_STRING");
  EXPECT_EQ(image_signature["outputs"]["output"]["tensor_shape"]["dim"][1]["size"], "10");
}

TEST(StandardErrors, StatusesAndBody) {
  EXPECT_EQ(standard_error_status(ec::invalid_json), 400);
  EXPECT_EQ(standard_error_status(ec::invalid_input), 400);
  EXPECT_EQ(standard_error_status(ec::unsupported_media_type), 400);
  EXPECT_EQ(standard_error_status(ec::unauthorized), 401);
  EXPECT_EQ(standard_error_status(ec::forbidden), 403);
  EXPECT_EQ(standard_error_status(ec::model_not_found), 404);
  EXPECT_EQ(standard_error_status(ec::payload_too_large), 413);
  EXPECT_EQ(standard_error_status(ec::rate_limited), 429);
  EXPECT_EQ(standard_error_status(ec::model_loading), 503);
  EXPECT_EQ(standard_error_status(ec::overloaded), 503);
  EXPECT_EQ(standard_error_status(ec::deadline_exceeded), 504);
  EXPECT_EQ(standard_error_status(ec::internal), 500);
  EXPECT_EQ(standard_error_body({ec::invalid_input, "inputs[0]: bad", "inputs[0]"}),
            json({{"error", "inputs[0]: bad"}}));
}

} // namespace
} // namespace actorserve
