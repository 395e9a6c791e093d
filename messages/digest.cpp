#include "messages/digest.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>

#include <openssl/evp.h>

#include "messages/error.hpp"

namespace actorserve {

namespace {

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
struct md_deleter {
  void operator()(EVP_MD* md) const { EVP_MD_free(md); }
};

/// Fetched once: the implicit fetch of EVP_sha256() looks the algorithm up in
/// the provider store (under a lock) on every call.
const EVP_MD* sha256_md() {
  static const std::unique_ptr<EVP_MD, md_deleter> md{
      EVP_MD_fetch(nullptr, "SHA256", nullptr)};
  if (!md)
    throw std::runtime_error("OpenSSL has no SHA-256");
  return md.get();
}
#else
const EVP_MD* sha256_md() {
  return EVP_sha256();
}
#endif

/// One running SHA-256.
class sha256 {
public:
  sha256() : context_(EVP_MD_CTX_new()) {
    if (!context_ || EVP_DigestInit_ex(context_.get(), sha256_md(), nullptr) != 1)
      throw std::runtime_error("SHA-256 init failed");
  }

  void add(const void* data, size_t size) {
    if (size > 0 && EVP_DigestUpdate(context_.get(), data, size) != 1)
      throw std::runtime_error("SHA-256 update failed");
  }

  std::array<unsigned char, 32> bytes() {
    std::array<unsigned char, 32> digest{};
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(context_.get(), digest.data(), &length) != 1 ||
        length != digest.size())
      throw std::runtime_error("SHA-256 final failed");
    return digest;
  }

  std::string hex() {
    static constexpr char digits[] = "0123456789abcdef";
    std::string text;
    text.reserve(64);
    for (unsigned char byte : bytes()) {
      text += digits[byte >> 4];
      text += digits[byte & 0xf];
    }
    return text;
  }

private:
  struct context_deleter {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
  };
  std::unique_ptr<EVP_MD_CTX, context_deleter> context_;
};

} // namespace

std::string tensor_digest(const tensor& x) {
  sha256 hash;
  auto rank = static_cast<uint64_t>(x.shape.size());
  hash.add(&rank, sizeof rank);
  hash.add(x.shape.data(), x.shape.size() * sizeof(int64_t));
  hash.add(x.values.data(), x.values.size() * sizeof(float));
  return hash.hex();
}

caf::expected<std::string> file_digest(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in)
    return make_error(ec::internal,
                      "cannot read " + file.string() + ": " + std::strerror(errno));
  sha256 hash;
  std::array<char, 1 << 16> buffer;
  while (in) {
    in.read(buffer.data(), buffer.size());
    hash.add(buffer.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad())
    return make_error(ec::internal, "cannot read " + file.string());
  return hash.hex();
}

std::array<unsigned char, 32> sha256_of(std::string_view text) {
  sha256 hash;
  hash.add(text.data(), text.size());
  return hash.bytes();
}

} // namespace actorserve
