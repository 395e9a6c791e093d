// End-to-end: the Open Inference Protocol (REST) on the real binary, beside the
// v1 API on the same port: the same answers, binary tensors both ways, the
// standard error bodies, and the same gate (keys, body limit).

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "protocols/codec_support.hpp"
#include "tests/served_suite.hpp"
#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using nlohmann::json;

const std::string affine_infer =
    R"({"id": "a-1", "inputs": [{"name": "input", "shape": [1, 2, 2], "datatype": "FP32",
        "data": [1, 2, 3, 4]}]})";

/// A body of the binary tensor extension: `header` then `tensor`; the
/// header's length goes in Inference-Header-Content-Length.
std::pair<std::string, httplib::Headers> binary_body(const json& header,
                                                     const std::string& tensor) {
  auto text = header.dump();
  return {text + tensor,
          {{"Inference-Header-Content-Length", std::to_string(text.size())}}};
}

/// The float32 values after the JSON part of a binary reply.
std::vector<float> binary_floats(const httplib::Result& result) {
  auto json_length =
      std::stoul(result->get_header_value("Inference-Header-Content-Length"));
  std::vector<float> values((result->body.size() - json_length) / sizeof(float));
  std::memcpy(values.data(), result->body.data() + json_length,
              values.size() * sizeof(float));
  return values;
}

class oip_e2e_test : public testing::served_suite<oip_e2e_test> {
public: // read by served_suite
  static std::vector<std::string> server_flags() {
    return {"--max-body-bytes", "200000"};
  }
};

TEST_F(oip_e2e_test, health_and_server_metadata) {
  auto client = server().client();
  EXPECT_EQ(testing::get_json(client, "/v2/health/live").body, json({{"live", true}}));
  auto ready = testing::get_json(client, "/v2/health/ready");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, json({{"ready", true}}));
  auto server = testing::get_json(client, "/v2");
  EXPECT_EQ(server.body["name"], "actorserve");
  EXPECT_NE(server.body["extensions"].dump().find("binary_tensor_data"),
            std::string::npos);
  auto model_ready = testing::get_json(client, "/v2/models/affine/versions/1/ready");
  EXPECT_EQ(model_ready.status, 200) << model_ready.body.dump();
  EXPECT_EQ(model_ready.body["ready"], true);
}

TEST_F(oip_e2e_test, model_metadata_has_the_standard_shapes) {
  auto client = server().client();
  auto digits = testing::get_json(client, "/v2/models/digits");
  ASSERT_EQ(digits.status, 200) << digits.body.dump();
  EXPECT_EQ(digits.body["platform"], "pytorch_libtorch");
  EXPECT_EQ(digits.body["versions"], json({"1"}));
  EXPECT_EQ(digits.body["inputs"][0]["name"], "image");
  EXPECT_EQ(digits.body["inputs"][0]["datatype"], "BYTES");
  EXPECT_EQ(digits.body["inputs"][0]["shape"], json({-1}));
  auto affine = testing::get_json(client, "/v2/models/affine/versions/1");
  ASSERT_EQ(affine.status, 200) << affine.body.dump();
  EXPECT_EQ(affine.body["inputs"][0]["shape"], json({-1, 2, 2}));
  EXPECT_EQ(affine.body["outputs"][0]["name"], "output");
}

TEST_F(oip_e2e_test, json_infer_equals_the_v1_answer) {
  auto client = server().client();
  // No Content-Type: accepted.
  auto result = client.Post("/v2/models/affine/infer", affine_infer, "");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  auto body = json::parse(result->body);
  EXPECT_EQ(body["id"], "a-1");
  EXPECT_EQ(body["model_name"], "affine");
  EXPECT_EQ(body["outputs"][0]["data"], json({3.0, 5.0, 7.0, 9.0}));
  auto v1 = testing::post_json(client, "/api/v1/models/affine/predict",
                               R"({"instances": [{"data": [[1, 2], [3, 4]]}]})");
  EXPECT_EQ(body["outputs"][0]["data"], v1.body["predictions"][0]["output"]);
}

TEST_F(oip_e2e_test, binary_infer_round_trip) {
  std::vector<float> input{1, 2, 3, 4};
  std::string tensor(reinterpret_cast<const char*>(input.data()), 16);
  auto [body, headers] = binary_body(
      {{"inputs",
        {{{"name", "input"},
          {"shape", {1, 2, 2}},
          {"datatype", "FP32"},
          {"parameters", {{"binary_data_size", 16}}}}}},
       {"outputs", {{{"name", "output"}, {"parameters", {{"binary_data", true}}}}}}},
      tensor);
  auto client = server().client();
  auto result = client.Post("/v2/models/affine/versions/1/infer", headers, body,
                            "application/octet-stream");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  EXPECT_EQ(result->get_header_value("Content-Type"), "application/octet-stream");
  EXPECT_EQ(binary_floats(result), (std::vector<float>{3, 5, 7, 9}));
}

TEST_F(oip_e2e_test, image_by_base64_and_by_binary_bytes_match_v1) {
  auto digit = testing::holdout_digits(1).at(0);
  auto png = digit["png"].get<std::string>();
  auto client = server().client();
  auto v1 = testing::post_json(
      client, "/api/v1/models/digits/predict",
      json{{"instances", {{{"image", png}}}}, {"parameters", {{"raw_output", true}}}}
          .dump());
  ASSERT_EQ(v1.status, 200);
  auto expected = v1.body["predictions"][0]["output"];

  auto by_base64 = testing::post_json(
      client, "/v2/models/digits/infer",
      json{
          {"inputs",
           {{{"name", "image"}, {"shape", {1}}, {"datatype", "BYTES"}, {"data", {png}}}}}}
          .dump());
  ASSERT_EQ(by_base64.status, 200) << by_base64.body.dump();
  EXPECT_EQ(by_base64.body["outputs"][0]["data"], expected);

  auto bytes = base64_bytes(png, "png");
  uint32_t length = static_cast<uint32_t>(bytes.size());
  std::string element(reinterpret_cast<const char*>(&length), 4);
  element += bytes;
  auto [body, headers] =
      binary_body({{"inputs",
                    {{{"name", "image"},
                      {"shape", {1}},
                      {"datatype", "BYTES"},
                      {"parameters", {{"binary_data_size", element.size()}}}}}}},
                  element);
  auto by_binary = client.Post("/v2/models/digits/infer", headers, body, "");
  ASSERT_TRUE(by_binary);
  ASSERT_EQ(by_binary->status, 200) << by_binary->body;
  EXPECT_EQ(json::parse(by_binary->body)["outputs"][0]["data"], expected);
}

TEST_F(oip_e2e_test, classification_gives_the_held_out_digit) {
  auto digit = testing::holdout_digits(1).at(0);
  auto client = server().client();
  auto answer = testing::post_json(
      client, "/v2/models/digits/infer",
      json{{"inputs",
            {{{"name", "image"},
              {"shape", {1}},
              {"datatype", "BYTES"},
              {"data", {digit["png"]}}}}},
           {"outputs", {{{"name", "output"}, {"parameters", {{"classification", 1}}}}}}}
          .dump());
  ASSERT_EQ(answer.status, 200) << answer.body.dump();
  EXPECT_EQ(answer.body["outputs"][0]["datatype"], "BYTES");
  auto top = answer.body["outputs"][0]["data"][0].get<std::string>();
  // "score:index:label"
  auto index = top.substr(top.find(':') + 1);
  EXPECT_EQ(std::stoi(index.substr(0, index.find(':'))), digit["label"].get<int>());
}

TEST_F(oip_e2e_test, errors_have_the_standard_body) {
  auto client = server().client();
  auto unknown = testing::post_json(client, "/v2/models/nope/infer", affine_infer);
  EXPECT_EQ(unknown.status, 404);
  EXPECT_TRUE(unknown.body["error"].is_string()) << unknown.body.dump();
  auto bad_type = testing::post_json(
      client, "/v2/models/affine/infer",
      R"({"inputs": [{"name": "input", "shape": [1, 2, 2], "datatype": "FP99",
          "data": [1, 2, 3, 4]}]})");
  EXPECT_EQ(bad_type.status, 400);
  EXPECT_TRUE(bad_type.body["error"].is_string());
  auto too_large =
      testing::post_json(client, "/v2/models/affine/infer", std::string(300000, ' '));
  EXPECT_EQ(too_large.status, 413);
  EXPECT_TRUE(too_large.body["error"].is_string()) << too_large.body.dump();
  EXPECT_EQ(testing::get_json(client, "/v2/models/affine/versions/7").status, 404);
}

TEST_F(oip_e2e_test, repository_index_lists_every_version_folder) {
  auto client = server().client();
  auto index = testing::post_json(client, "/v2/repository/index", "");
  ASSERT_EQ(index.status, 200) << index.body.dump();
  ASSERT_TRUE(index.body.is_array());
  bool digits_ready = false;
  for (const auto& entry : index.body)
    digits_ready |=
        entry["name"] == "digits" && entry["version"] == "1" && entry["state"] == "READY";
  EXPECT_TRUE(digits_ready) << index.body.dump();
}

TEST(oip_e2e_auth, a_missing_api_key_is_refused) {
  testing::temp_dir repository;
  testing::copy_model("affine", repository.path());
  testing::server_process server{{"--model-repository", repository.path().string()},
                                 {{"ACTORSERVE_API_KEYS", "predict-key-0123456789"}}};
  auto client = server.client();
  auto refused = testing::post_json(client, "/v2/models/affine/infer", affine_infer);
  EXPECT_EQ(refused.status, 401);
  EXPECT_TRUE(refused.body["error"].is_string());
  auto served = testing::post_json(client, "/v2/models/affine/infer", affine_infer,
                                   {{"X-API-Key", "predict-key-0123456789"}});
  EXPECT_EQ(served.status, 200);
  EXPECT_EQ(testing::get_json(client, "/v2/health/ready").status, 200);
}

} // namespace
} // namespace actorserve
