#pragma once

// Shared by the codec tests: the two kinds of model as specs (the bundled
// affine and digits models), a real digit PNG, binary tensor bytes, and an
// assertion on api_error.

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "messages/error.hpp"
#include "messages/payloads.hpp"
#include "tests/test_support.hpp"

namespace actorserve::testing {

/// A tensor model taking [2, 2] per row, as models/repository/affine.
inline model_spec tensor_model() {
  model_spec spec;
  spec.name = "affine";
  spec.input.type = input_kind::tensor;
  spec.input.shape = {2, 2};
  return spec;
}

/// An image model as models/repository/digits/config.json, labels "0".."9".
inline model_spec digits_model() {
  model_spec spec;
  spec.name = "digits";
  spec.input.type = input_kind::image;
  spec.input.height = 28;
  spec.input.width = 28;
  spec.input.channels = 1;
  spec.input.mean = {0.5f};
  spec.input.std = {0.5f};
  spec.input.shape = {1, 28, 28};
  spec.output.type = output_kind::classification;
  for (int i = 0; i < 10; ++i)
    spec.labels.push_back(std::to_string(i));
  return spec;
}

/// The first held-out digit, a real PNG, in base64.
inline std::string digit_base64() {
  std::ifstream in{digits_holdout_file()};
  std::string line;
  std::getline(in, line);
  return nlohmann::json::parse(line).at("png").get<std::string>();
}

/// `values` as packed bytes, little-endian as the test hosts are.
template <class T> inline std::string little_endian(const std::vector<T>& values) {
  std::string bytes;
  for (T value : values) {
    unsigned char raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    bytes.append(reinterpret_cast<const char*>(raw), sizeof(T));
  }
  return bytes;
}

/// One BYTES element in the binary form: a 4-byte length, then the bytes.
inline std::string bytes_element(const std::string& bytes) {
  std::string out = little_endian(std::vector<uint32_t>{uint32_t(bytes.size())});
  return out + bytes;
}

} // namespace actorserve::testing

/// Expects an api_error with `expected_code` whose message contains `text`.
#define EXPECT_ERROR(call, expected_code, text)                                          \
  do {                                                                                   \
    const ::actorserve::api_error error_ = (call);                                       \
    EXPECT_EQ(error_.code, expected_code) << error_.message;                             \
    EXPECT_NE(error_.message.find(text), std::string::npos) << error_.message;           \
  } while (false)
