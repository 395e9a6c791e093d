#include "protocols/oip_tensor_data.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/codec_fixtures.hpp"

namespace actorserve {
namespace {

using json = nlohmann::json;
using testing::bytes_element;
using testing::little_endian;

std::vector<float> from_binary(const std::string& type, const std::string& bytes,
                               size_t count = 4) {
  std::vector<float> out(count);
  binary_to_floats(bytes, *parse_oip_datatype(type), count, "x", out.data());
  return out;
}

std::vector<float> from_json(const std::string& type, const json& data,
                             size_t count = 4) {
  std::vector<float> out(count);
  json_to_floats(data, *parse_oip_datatype(type), count, "x", out.data());
  return out;
}

template <class Call> api_error error_of(Call&& call) {
  try {
    call();
  } catch (const api_error& error) {
    return error;
  }
  ADD_FAILURE() << "no error";
  return {};
}

const std::vector<float> expected{1, -2, 3, 4};

TEST(OipDatatype, NamesAndSizes) {
  const std::vector<std::pair<std::string, size_t>> types{
      {"BOOL", 1}, {"UINT8", 1}, {"UINT16", 2}, {"UINT32", 4}, {"UINT64", 8},
      {"INT8", 1}, {"INT16", 2}, {"INT32", 4},  {"INT64", 8},  {"FP16", 2},
      {"BF16", 2}, {"FP32", 4},  {"FP64", 8},   {"BYTES", 0}};
  for (const auto& [name, size] : types) {
    ASSERT_TRUE(parse_oip_datatype(name)) << name;
    EXPECT_EQ(element_bytes(*parse_oip_datatype(name)), size) << name;
  }
  EXPECT_FALSE(parse_oip_datatype("fp32")); // names are case-sensitive
  EXPECT_FALSE(parse_oip_datatype("STRING"));
}

TEST(OipBinaryElements, EveryNumericTypeConvertsToFloat) {
  EXPECT_EQ(from_binary("FP32", little_endian<float>({1, -2, 3, 4})), expected);
  EXPECT_EQ(from_binary("FP64", little_endian<double>({1, -2, 3, 4})), expected);
  EXPECT_EQ(from_binary("INT64", little_endian<int64_t>({1, -2, 3, 4})), expected);
  EXPECT_EQ(from_binary("INT32", little_endian<int32_t>({1, -2, 3, 4})), expected);
  EXPECT_EQ(from_binary("INT16", little_endian<int16_t>({1, -2, 3, 4})), expected);
  EXPECT_EQ(from_binary("INT8", little_endian<int8_t>({1, -2, 3, 4})), expected);
  EXPECT_EQ(from_binary("INT8", little_endian<int8_t>({-128, 127, 0, -1})),
            (std::vector<float>{-128, 127, 0, -1}));
  EXPECT_EQ(from_binary("UINT8", little_endian<uint8_t>({0, 255, 3, 4})),
            (std::vector<float>{0, 255, 3, 4}));
  EXPECT_EQ(from_binary("UINT16", little_endian<uint16_t>({0, 65535, 3, 4})),
            (std::vector<float>{0, 65535, 3, 4}));
  EXPECT_EQ(from_binary("UINT32", little_endian<uint32_t>({0, 70000, 3, 4})),
            (std::vector<float>{0, 70000, 3, 4}));
  EXPECT_EQ(from_binary("UINT64", little_endian<uint64_t>({0, 1ull << 40, 3, 4})),
            (std::vector<float>{0, 0x1p40f, 3, 4}));
  EXPECT_EQ(from_binary("BOOL", little_endian<uint8_t>({1, 0, 7, 0})),
            (std::vector<float>{1, 0, 1, 0}));
  // FP16: 1, -2, 0.5 and the smallest subnormal; BF16: 1, -2, 3, 4.
  EXPECT_EQ(
      from_binary("FP16", little_endian<uint16_t>({0x3C00, 0xC000, 0x3800, 0x0001})),
      (std::vector<float>{1, -2, 0.5f, 0x1p-24f}));
  EXPECT_EQ(
      from_binary("BF16", little_endian<uint16_t>({0x3F80, 0xC000, 0x4040, 0x4080})),
      expected);
}

TEST(OipBinaryElements, NonFiniteValuesAreRefused) {
  EXPECT_ERROR(error_of([] {
                 from_binary("FP32", little_endian<float>({1, NAN, 3, 4}));
               }),
               ec::invalid_input, "element 1");
  EXPECT_ERROR(error_of([] {
                 from_binary("FP16", little_endian<uint16_t>({0, 0, 0, 0x7C00}));
               }),
               ec::invalid_input, "element 3");
  EXPECT_ERROR(error_of([] {
                 from_binary("FP64", little_endian<double>({1e300, 0, 0, 0}));
               }),
               ec::invalid_input, "finite");
}

TEST(OipJsonElements, EveryJsonTypeConvertsToFloat) {
  for (auto type : {"FP32", "FP64", "INT64", "INT32", "INT16", "INT8"})
    EXPECT_EQ(from_json(type, {1, -2, 3, 4}), expected) << type;
  EXPECT_EQ(from_json("FP32", {0.5, 1, 1e-3, -7.25}),
            (std::vector<float>{0.5f, 1, 1e-3f, -7.25f}));
  EXPECT_EQ(from_json("BOOL", {true, false, false, true}),
            (std::vector<float>{1, 0, 0, 1}));
  EXPECT_EQ(from_json("UINT64", {0, 18446744073709551615ull, 3, 4})[1], 0x1p64f);
  EXPECT_EQ(from_json("UINT8", {0, 255, 3, 4}), (std::vector<float>{0, 255, 3, 4}));
}

TEST(OipJsonElements, FlatAndNestedAreTheSameRowMajorOrder) {
  EXPECT_EQ(from_json("FP32", {{1, -2}, {3, 4}}), expected);
  EXPECT_EQ(from_json("FP32", {{{1}, {-2}}, {{3}, {4}}}), expected);
  EXPECT_EQ(from_json("FP32", {1, {-2, {3}}, 4}), expected); // only the count is checked
}

TEST(OipJsonElements, ElementsMustSuitTheDatatype) {
  auto bad = [](const std::string& type, json data) {
    return error_of([&] { from_json(type, data); });
  };
  EXPECT_ERROR(bad("INT32", {1, 2.5, 3, 4}), ec::invalid_input, "element 1");
  EXPECT_ERROR(bad("INT32", {1, 2, 3, 2147483648ll}), ec::invalid_input, "element 3");
  EXPECT_ERROR(bad("UINT8", {1, 256, 3, 4}), ec::invalid_input, "0..255");
  EXPECT_ERROR(bad("UINT8", {1, -1, 3, 4}), ec::invalid_input, "0..255");
  EXPECT_ERROR(bad("INT8", {1, -129, 3, 4}), ec::invalid_input, "-128..127");
  EXPECT_ERROR(bad("BOOL", {1, 0, 1, 0}), ec::invalid_input, "true or false");
  EXPECT_ERROR(bad("FP32", {1, "2", 3, 4}), ec::invalid_input, "number");
  EXPECT_ERROR(bad("FP32", {1, nullptr, 3, 4}), ec::invalid_input, "number");
  EXPECT_ERROR(bad("FP64", {1, 1e300, 3, 4}), ec::invalid_input, "finite");
  EXPECT_ERROR(bad("FP16", {1, 2, 3, 4}), ec::invalid_input, "binary");
  EXPECT_ERROR(bad("BF16", {1, 2, 3, 4}), ec::invalid_input, "binary");
}

TEST(OipJsonElements, CountMustBeTheShapeProduct) {
  EXPECT_ERROR(error_of([] {
                 from_json("FP32", {1, 2, 3});
               }),
               ec::invalid_input, "holds 3 elements");
  EXPECT_ERROR(error_of([] {
                 from_json("FP32", {1, 2, 3, 4, 5});
               }),
               ec::invalid_input, "more than 4");
  EXPECT_ERROR(error_of([] { from_json("FP32", json::array()); }), ec::invalid_input,
               "holds 0 elements");
}

TEST(OipBytesElements, BinaryFraming) {
  const auto bytes = bytes_element("ab") + bytes_element("") + bytes_element("cde");
  EXPECT_EQ(split_bytes_elements(bytes, 3, "x"),
            (std::vector<std::string_view>{"ab", "", "cde"}));
  std::string appended;
  for (auto element : {"ab", "", "cde"})
    append_bytes_element(appended, element);
  EXPECT_EQ(appended, bytes);

  auto bad = [](const std::string& binary, size_t count) {
    return error_of([&] { split_bytes_elements(binary, count, "x"); });
  };
  EXPECT_ERROR(bad(bytes, 4), ec::invalid_input, "element 3: its 4-byte length");
  EXPECT_ERROR(bad(bytes.substr(0, bytes.size() - 1), 3), ec::invalid_input,
               "element 2 claims 3 bytes, only 2");
  EXPECT_ERROR(bad(bytes.substr(0, 2), 1), ec::invalid_input, "4-byte length");
  EXPECT_ERROR(bad(little_endian<uint32_t>({0xFFFFFFFFu}) + "abc", 1), ec::invalid_input,
               "claims 4294967295");
  EXPECT_ERROR(bad(bytes, 2), ec::invalid_input, "bytes are left");
}

TEST(OipBytesElements, JsonStrings) {
  // json::array: {{"a", "b"}, ...} would be an object.
  const auto data = json::array({json::array({"a", "b"}), json::array({"c", "d"})});
  EXPECT_EQ(json_bytes_elements(data, 4, "x"),
            (std::vector<std::string_view>{"a", "b", "c", "d"}));
  EXPECT_ERROR(error_of([] {
                 json_bytes_elements({"a", 1}, 2, "x");
               }),
               ec::invalid_input, "must be a string");
  EXPECT_ERROR(error_of([] { json_bytes_elements({"a"}, 2, "x"); }), ec::invalid_input,
               "holds 1 elements");
}

} // namespace
} // namespace actorserve
