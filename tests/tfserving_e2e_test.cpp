// End-to-end: TensorFlow Serving REST on the real binary, beside the v1 API
// on the same port: the same answers, model status and metadata, errors; and
// one test driving OIP and TF Serving with Python requests (Debian's python3).

#include <gtest/gtest.h>

#include <fstream>

#include "tests/served_suite.hpp"
#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using nlohmann::json;

class tfserving_e2e_test : public testing::served_suite<tfserving_e2e_test> {
protected:
};

TEST_F(tfserving_e2e_test, row_and_columnar_predict_equal_v1) {
  auto client = server().client();
  auto rows = testing::post_json(client, "/v1/models/affine:predict",
                                 R"({"instances": [[[1, 2], [3, 4]]]})");
  ASSERT_EQ(rows.status, 200) << rows.body.dump();
  // Each instance's raw output row, nested to the output's shape (API.md):
  // affine's output is [N, 2, 2].
  EXPECT_EQ(rows.body["predictions"], json::parse("[[[3.0, 5.0], [7.0, 9.0]]]"));
  auto columns = testing::post_json(client, "/v1/models/affine/versions/1:predict",
                                    R"({"inputs": [[[1, 2], [3, 4]]]})");
  ASSERT_EQ(columns.status, 200) << columns.body.dump();
  EXPECT_EQ(columns.body["outputs"], rows.body["predictions"]);
  EXPECT_EQ(columns.body["predictions"], rows.body["predictions"]);
}

TEST_F(tfserving_e2e_test, digit_predictions_are_v1_raw_outputs) {
  auto png = testing::holdout_digits(1).at(0)["png"].get<std::string>();
  auto client = server().client();
  auto v1 = testing::post_json(
      client, "/api/v1/models/digits/predict",
      json{{"instances", {{{"image", png}}}}, {"parameters", {{"raw_output", true}}}}
          .dump());
  auto tf = testing::post_json(client, "/v1/models/digits:predict",
                               json{{"instances", {{{"b64", png}}}}}.dump());
  ASSERT_EQ(tf.status, 200) << tf.body.dump();
  EXPECT_EQ(tf.body["predictions"][0], v1.body["predictions"][0]["output"]);
}

TEST_F(tfserving_e2e_test, status_metadata_and_errors) {
  auto client = server().client();
  auto status = testing::get_json(client, "/v1/models/affine");
  ASSERT_EQ(status.status, 200) << status.body.dump();
  EXPECT_EQ(status.body["model_version_status"][0]["state"], "AVAILABLE");
  auto metadata = testing::get_json(client, "/v1/models/digits/versions/1/metadata");
  ASSERT_EQ(metadata.status, 200) << metadata.body.dump();
  EXPECT_EQ(metadata.body["model_spec"]["name"], "digits");
  EXPECT_TRUE(metadata.body["metadata"]["signature_def"]["signature_def"].contains(
      "serving_default"));
  auto unknown =
      testing::post_json(client, "/v1/models/nope:predict", R"({"instances": []})");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_TRUE(unknown.body["error"].is_string()) << unknown.body.dump();
  EXPECT_EQ(testing::get_json(client, "/v1/models/affine/versions/9").status, 404);
}

TEST_F(tfserving_e2e_test, python_requests_client_gets_the_same_answers) {
  auto digit = testing::holdout_digits(1).at(0);
  testing::temp_dir scratch;
  auto script = scratch.path() / "client.py";
  testing::write_file(script, R"(import json, sys, requests
base, png, label = sys.argv[1], sys.argv[2], int(sys.argv[3])
oip = requests.post(base + "/v2/models/affine/infer", json={"inputs": [
    {"name": "input", "shape": [1, 2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]})
assert oip.status_code == 200, oip.text
assert oip.json()["outputs"][0]["data"] == [3.0, 5.0, 7.0, 9.0], oip.text
tf = requests.post(base + "/v1/models/digits:predict", json={"instances": [{"b64": png}]})
assert tf.status_code == 200, tf.text
row = tf.json()["predictions"][0]
assert max(range(len(row)), key=row.__getitem__) == label, row
print("ok")
)");
  auto result = testing::run_command(
      "/usr/bin/python3 " + script.string() +
      " http://127.0.0.1:" + std::to_string(server().port()) + " '" +
      digit["png"].get<std::string>() + "' " + std::to_string(digit["label"].get<int>()));
  EXPECT_EQ(result.code, 0) << result.output;
  EXPECT_NE(result.output.find("ok"), std::string::npos) << result.output;
}

} // namespace
} // namespace actorserve
