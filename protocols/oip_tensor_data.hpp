#pragma once

// Open Inference Protocol tensor elements: the datatypes, their JSON and
// little-endian binary forms converted to float32, and the framing of BYTES
// elements (a 4-byte little-endian length before each element's bytes).
// ../shared/protocols/open-inference-rest.md, sections 8 and 10. Pure
// functions; every malformed element is an api_error naming `field`.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace actorserve {

enum class oip_datatype {
  boolean,
  uint8,
  uint16,
  uint32,
  uint64,
  int8,
  int16,
  int32,
  int64,
  fp16,
  bf16,
  fp32,
  fp64,
  bytes,
};

/// "FP32" -> fp32, ...; nullopt for a name the protocol does not define.
std::optional<oip_datatype> parse_oip_datatype(std::string_view name);

/// Bytes per element in the binary form; 0 for BYTES (variable).
size_t element_bytes(oip_datatype type);

/// One element given as a number (JSON, or gRPC's typed contents) for an
/// integer datatype: outside the type's range is invalid_input. A signed
/// value for an unsigned type, or the other way round, is checked the same.
float signed_integer_element(int64_t value, oip_datatype type, const std::string& field,
                             size_t index);
float unsigned_integer_element(uint64_t value, oip_datatype type,
                               const std::string& field, size_t index);

/// One floating-point element as float32; non-finite is invalid_input.
float finite_element(double value, const std::string& field, size_t index);

/// Converts `count` numeric elements of `type`, little-endian and packed, to
/// `out`. `bytes` must hold exactly count * element_bytes(type) bytes.
/// Non-finite results are invalid_input (no model takes NaN or infinity).
void binary_to_floats(std::string_view bytes, oip_datatype type, size_t count,
                      const std::string& field, float* out);

/// Converts the JSON `data` of a numeric tensor, flat or nested row-major,
/// to exactly `count` floats in `out`. Elements must suit `type`: booleans
/// for BOOL, integers in range for the integer types, numbers for FP32 and
/// FP64; FP16 and BF16 are binary only (as in Triton and KServe).
void json_to_floats(const nlohmann::json& data, oip_datatype type, size_t count,
                    const std::string& field, float* out);

/// Splits the binary form of a BYTES tensor into exactly `count` elements
/// (views into `bytes`). A prefix or an element past the end, or bytes left
/// over, are invalid_input.
std::vector<std::string_view> split_bytes_elements(std::string_view bytes, size_t count,
                                                   const std::string& field);

/// The strings of a BYTES tensor's JSON `data`, flat or nested; exactly
/// `count` of them.
std::vector<std::string_view> json_bytes_elements(const nlohmann::json& data,
                                                  size_t count, const std::string& field);

/// Appends one BYTES element in the binary form: length prefix, bytes.
void append_bytes_element(std::string& out, std::string_view element);

} // namespace actorserve
