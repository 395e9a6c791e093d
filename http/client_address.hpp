#pragma once

// Who is calling: the peer address of the connection, or, when the peer is
// one of the configured trusted proxies, the address X-Forwarded-For names
// (issue 5, "Rate limiting"). Used for rate-limit buckets and access logs.
// Immutable after construction, so safe on any HTTP thread.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace actorserve {

/// The canonical text of an IPv4 or IPv6 literal (IPv4-mapped IPv6 as IPv4);
/// nullopt when `text` is not one.
std::optional<std::string> canonical_ip(std::string_view text);

class client_address_resolver {
public:
  /// `trusted_proxies`: comma-separated IP literals (validated with the
  /// server options; entries that do not parse are ignored here).
  explicit client_address_resolver(std::string_view trusted_proxies);

  /// The client's address. X-Forwarded-For (`forwarded_for`, "" when absent)
  /// counts only when `peer` is trusted; then the rightmost entry that is not
  /// a trusted proxy is the client. An entry that is not an IP literal stops
  /// the walk: the trusted hop that reported it is the answer.
  std::string client_ip(const std::string& peer, std::string_view forwarded_for) const;

private:
  bool is_trusted(const std::string& canonical) const;

  std::vector<std::string> trusted_; // canonical
};

} // namespace actorserve
