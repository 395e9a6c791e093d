#include "protocols/oip_tensor_data.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "protocols/codec_support.hpp"

namespace actorserve {

namespace {

using json = nlohmann::json;

struct datatype_entry {
  std::string_view name;
  oip_datatype type;
  size_t bytes;
};

constexpr std::array<datatype_entry, 14> datatypes{{
    {"BOOL", oip_datatype::boolean, 1},
    {"UINT8", oip_datatype::uint8, 1},
    {"UINT16", oip_datatype::uint16, 2},
    {"UINT32", oip_datatype::uint32, 4},
    {"UINT64", oip_datatype::uint64, 8},
    {"INT8", oip_datatype::int8, 1},
    {"INT16", oip_datatype::int16, 2},
    {"INT32", oip_datatype::int32, 4},
    {"INT64", oip_datatype::int64, 8},
    {"FP16", oip_datatype::fp16, 2},
    {"BF16", oip_datatype::bf16, 2},
    {"FP32", oip_datatype::fp32, 4},
    {"FP64", oip_datatype::fp64, 8},
    {"BYTES", oip_datatype::bytes, 0},
}};

const datatype_entry& entry(oip_datatype type) {
  for (const auto& candidate : datatypes)
    if (candidate.type == type)
      return candidate;
  return datatypes.back();
}

bool is_signed_integer(oip_datatype type) {
  return type == oip_datatype::int8 || type == oip_datatype::int16 ||
         type == oip_datatype::int32 || type == oip_datatype::int64;
}

bool is_unsigned_integer(oip_datatype type) {
  return type == oip_datatype::uint8 || type == oip_datatype::uint16 ||
         type == oip_datatype::uint32 || type == oip_datatype::uint64;
}

uint64_t read_little_endian(const unsigned char* bytes, size_t size) {
  uint64_t value = 0;
  for (size_t i = 0; i < size; ++i)
    value |= uint64_t{bytes[i]} << (8 * i);
  return value;
}

float half_to_float(uint64_t bits) {
  const auto exponent = static_cast<int>((bits >> 10) & 0x1f);
  const auto mantissa = static_cast<float>(bits & 0x3ff);
  float magnitude;
  if (exponent == 0)
    magnitude = std::ldexp(mantissa, -24); // subnormal
  else if (exponent == 31)
    magnitude = mantissa != 0 ? std::numeric_limits<float>::quiet_NaN()
                              : std::numeric_limits<float>::infinity();
  else
    magnitude = std::ldexp(mantissa + 1024.0f, exponent - 25);
  return (bits & 0x8000) != 0 ? -magnitude : magnitude;
}

template <class Float, class Bits> Float bit_cast_to(Bits bits) {
  Float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

float binary_element(const unsigned char* bytes, oip_datatype type) {
  const size_t size = entry(type).bytes;
  const uint64_t bits = read_little_endian(bytes, size);
  switch (type) {
    case oip_datatype::boolean:
      return bits != 0 ? 1.0f : 0.0f;
    case oip_datatype::int8:
    case oip_datatype::int16:
    case oip_datatype::int32:
    case oip_datatype::int64: {
      const auto unused = 64 - 8 * static_cast<int>(size); // sign-extend
      return static_cast<float>(static_cast<int64_t>(bits << unused) >> unused);
    }
    case oip_datatype::fp16:
      return half_to_float(bits);
    case oip_datatype::bf16:
      return bit_cast_to<float>(static_cast<uint32_t>(bits << 16));
    case oip_datatype::fp32:
      return bit_cast_to<float>(static_cast<uint32_t>(bits));
    case oip_datatype::fp64:
      return static_cast<float>(bit_cast_to<double>(bits));
    default:
      return static_cast<float>(bits); // unsigned integers
  }
}

float finite(float value, const std::string& field, size_t index) {
  if (!std::isfinite(value))
    fail(ec::invalid_input, field,
         "element " + std::to_string(index) + " is not a finite float32 value");
  return value;
}

// [min, max] of an integer datatype; max as unsigned so that UINT64 fits.
std::pair<int64_t, uint64_t> integer_range(oip_datatype type) {
  const auto bits = 8 * entry(type).bytes;
  if (is_unsigned_integer(type))
    return {0, bits == 64 ? std::numeric_limits<uint64_t>::max()
                          : (uint64_t{1} << bits) - 1};
  return {bits == 64 ? std::numeric_limits<int64_t>::min() : -(int64_t{1} << (bits - 1)),
          bits == 64 ? uint64_t{std::numeric_limits<int64_t>::max()}
                     : (uint64_t{1} << (bits - 1)) - 1};
}

[[noreturn]] void out_of_range(oip_datatype type, const std::string& field,
                               size_t index) {
  const auto [min, max] = integer_range(type);
  fail(ec::invalid_input, field,
       "element " + std::to_string(index) + " must be an integer in " +
           std::to_string(min) + ".." + std::to_string(max) + " for " +
           std::string{entry(type).name});
}

float json_integer(const json& value, oip_datatype type, const std::string& field,
                   size_t index) {
  if (!value.is_number_integer())
    out_of_range(type, field, index);
  if (value.is_number_unsigned())
    return unsigned_integer_element(value.get<uint64_t>(), type, field, index);
  return signed_integer_element(value.get<int64_t>(), type, field, index);
}

float json_element(const json& value, oip_datatype type, const std::string& field,
                   size_t index) {
  if (type == oip_datatype::boolean) {
    if (!value.is_boolean())
      fail(ec::invalid_input, field,
           "element " + std::to_string(index) + " must be true or false for BOOL");
    return value.get<bool>() ? 1.0f : 0.0f;
  }
  if (is_signed_integer(type) || is_unsigned_integer(type))
    return json_integer(value, type, field, index);
  if (!value.is_number())
    fail(ec::invalid_input, field,
         "element " + std::to_string(index) + " must be a number, not " +
             std::string{value.type_name()});
  return finite_element(value.get<double>(), field, index);
}

// Calls visit(leaf, index) on the leaves of `data` in row-major order
// (nesting is not checked, as in Triton: only the count must match).
template <class Visit>
void visit_leaves(const json& data, size_t count, const std::string& field, size_t& seen,
                  Visit&& visit) {
  if (data.is_array()) {
    for (const auto& element : data.get_ref<const json::array_t&>())
      visit_leaves(element, count, field, seen, visit);
    return;
  }
  if (seen == count)
    fail(ec::invalid_input, field,
         "holds more than " + std::to_string(count) +
             " elements, the product of its shape");
  visit(data, seen);
  ++seen;
}

template <class Visit>
void visit_all_leaves(const json& data, size_t count, const std::string& field,
                      Visit&& visit) {
  size_t seen = 0;
  visit_leaves(data, count, field, seen, visit);
  if (seen != count)
    fail(ec::invalid_input, field,
         "holds " + std::to_string(seen) + " elements, but the product of its shape is " +
             std::to_string(count));
}

} // namespace

std::optional<oip_datatype> parse_oip_datatype(std::string_view name) {
  for (const auto& candidate : datatypes)
    if (candidate.name == name)
      return candidate.type;
  return std::nullopt;
}

size_t element_bytes(oip_datatype type) {
  return entry(type).bytes;
}

float signed_integer_element(int64_t value, oip_datatype type, const std::string& field,
                             size_t index) {
  const auto [min, max] = integer_range(type);
  if (value < min || (value > 0 && static_cast<uint64_t>(value) > max))
    out_of_range(type, field, index);
  return static_cast<float>(value);
}

float unsigned_integer_element(uint64_t value, oip_datatype type,
                               const std::string& field, size_t index) {
  if (value > integer_range(type).second)
    out_of_range(type, field, index);
  return static_cast<float>(value);
}

float finite_element(double value, const std::string& field, size_t index) {
  return finite(static_cast<float>(value), field, index);
}

void binary_to_floats(std::string_view bytes, oip_datatype type, size_t count,
                      const std::string& field, float* out) {
  const size_t size = element_bytes(type);
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t i = 0; i < count; ++i)
    out[i] = finite(binary_element(data + i * size, type), field, i);
}

void json_to_floats(const json& data, oip_datatype type, size_t count,
                    const std::string& field, float* out) {
  if (type == oip_datatype::fp16 || type == oip_datatype::bf16)
    fail(ec::invalid_input, field,
         std::string{entry(type).name} +
             " data must be sent in binary (parameters.binary_data_size), not JSON");
  visit_all_leaves(data, count, field, [&](const json& leaf, size_t index) {
    out[index] = json_element(leaf, type, field, index);
  });
}

std::vector<std::string_view> split_bytes_elements(std::string_view bytes, size_t count,
                                                   const std::string& field) {
  std::vector<std::string_view> elements;
  elements.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    if (bytes.size() < 4)
      fail(ec::invalid_input, field,
           "element " + std::to_string(i) + ": its 4-byte length is past the end");
    const auto size =
        read_little_endian(reinterpret_cast<const unsigned char*>(bytes.data()), 4);
    bytes.remove_prefix(4);
    if (size > bytes.size())
      fail(ec::invalid_input, field,
           "element " + std::to_string(i) + " claims " + std::to_string(size) +
               " bytes, only " + std::to_string(bytes.size()) + " are left");
    elements.push_back(bytes.substr(0, size));
    bytes.remove_prefix(size);
  }
  if (!bytes.empty())
    fail(ec::invalid_input, field,
         std::to_string(bytes.size()) + " bytes are left after its " +
             std::to_string(count) + " elements");
  return elements;
}

std::vector<std::string_view> json_bytes_elements(const json& data, size_t count,
                                                  const std::string& field) {
  std::vector<std::string_view> elements;
  elements.reserve(count);
  visit_all_leaves(data, count, field, [&](const json& leaf, size_t index) {
    if (!leaf.is_string())
      fail(ec::invalid_input, field,
           "element " + std::to_string(index) + " must be a string (base64), not " +
               std::string{leaf.type_name()});
    elements.push_back(leaf.get_ref<const std::string&>());
  });
  return elements;
}

void append_bytes_element(std::string& out, std::string_view element) {
  const auto size = static_cast<uint32_t>(element.size());
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((size >> (8 * i)) & 0xff));
  out.append(element);
}

} // namespace actorserve
