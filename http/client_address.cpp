#include "http/client_address.hpp"

#include <algorithm>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace actorserve {

namespace {

/// Walk no further back than this many X-Forwarded-For entries.
constexpr int max_forwarded_hops = 32;

std::string_view trim(std::string_view text) {
  auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos)
    return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

} // namespace

std::optional<std::string> canonical_ip(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN ||
      text.find('\0') != std::string_view::npos)
    return std::nullopt;
  std::string literal{text};
  char out[INET6_ADDRSTRLEN];
  in_addr v4{};
  if (inet_pton(AF_INET, literal.c_str(), &v4) == 1)
    return std::string{inet_ntop(AF_INET, &v4, out, sizeof out)};
  in6_addr v6{};
  if (inet_pton(AF_INET6, literal.c_str(), &v6) != 1)
    return std::nullopt;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    std::copy_n(v6.s6_addr + 12, 4, reinterpret_cast<unsigned char*>(&v4));
    return std::string{inet_ntop(AF_INET, &v4, out, sizeof out)};
  }
  return std::string{inet_ntop(AF_INET6, &v6, out, sizeof out)};
}

client_address_resolver::client_address_resolver(std::string_view trusted_proxies) {
  while (!trusted_proxies.empty()) {
    auto comma = trusted_proxies.find(',');
    if (auto address = canonical_ip(trim(trusted_proxies.substr(0, comma))))
      trusted_.push_back(*address);
    trusted_proxies.remove_prefix(comma == std::string_view::npos ? trusted_proxies.size()
                                                                  : comma + 1);
  }
}

bool client_address_resolver::is_trusted(const std::string& canonical) const {
  return std::find(trusted_.begin(), trusted_.end(), canonical) != trusted_.end();
}

std::string client_address_resolver::client_ip(const std::string& peer,
                                               std::string_view forwarded_for) const {
  auto client = canonical_ip(peer).value_or(peer);
  for (int hop = 0; hop < max_forwarded_hops && is_trusted(client); ++hop) {
    forwarded_for = trim(forwarded_for);
    if (forwarded_for.empty())
      break;
    auto comma = forwarded_for.rfind(',');
    auto entry =
        comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1);
    auto address = canonical_ip(trim(entry));
    if (!address)
      break;
    client = *address;
    forwarded_for = comma == std::string_view::npos ? std::string_view{}
                                                    : forwarded_for.substr(0, comma);
  }
  return client;
}

} // namespace actorserve
