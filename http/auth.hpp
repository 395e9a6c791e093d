#pragma once

// API keys and their roles (../shared/API.md, "HTTP API" and "Operator
// contract"; issue 4, "Who may do it"). Keys come from ACTORSERVE_API_KEYS
// (predict role), ACTORSERVE_ADMIN_KEYS (admin role, may also predict) and an
// optional key file that can be re-read at run time, so keys rotate without a
// restart. Only SHA-256 digests of the keys are kept; a presented key is
// hashed and compared against every stored digest in constant time.
//
// No CAF and no httplib here: the HTTP layer reads the X-API-Key header and
// asks check_access() for the answer.

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/error.hpp"

namespace actorserve {

/// What a key may do. Ordered: admin may also predict.
enum class role : uint8_t { none, predict, admin };

std::string_view to_string(role r);

/// Keys shorter than this are accepted with a warning (never printing them).
inline constexpr size_t recommended_key_length = 16;

class key_store {
public:
  /// Keys from the env/config lists and, optionally, a key file (re-read by
  /// reload()). Entries are trimmed; empty entries are skipped. The key file
  /// holds one key per line, `predict:<key>` or `admin:<key>`; `#` comments
  /// and blank lines are ignored, whitespace around role and key is trimmed.
  /// A key file that cannot be read or parsed throws std::runtime_error with
  /// the reason (file name and line number, never a key). A key listed with
  /// both roles gets admin.
  key_store(std::vector<std::string> predict_keys, std::vector<std::string> admin_keys,
            std::string key_file = {});

  key_store(const key_store&) = delete;
  key_store& operator=(const key_store&) = delete;

  /// True when no key at all is configured (no list entry and no key file):
  /// auth is off. Fixed at construction: a key file that is configured but
  /// holds no key keeps auth on and lets nobody in (fails closed), so a
  /// truncated file during a rotation never opens the server.
  bool auth_disabled() const { return auth_disabled_; }

  /// The role of a presented key; role::none if unknown or empty. Hashes the
  /// key and compares SHA-256 digests with CRYPTO_memcmp against every stored
  /// digest, without early exit. Lock-free with respect to reload().
  role role_of(std::string_view presented_key) const;

  /// Re-reads the key file (if any). On error keeps the previous keys and
  /// returns the error text (file and line number, never a key); nullopt on
  /// success or when there is no key file. Safe to call from any thread
  /// while others call role_of(); reloads are serialised among themselves.
  std::optional<std::string> reload();

  /// Re-reads the key file if it changed (device, inode, size, mtime or
  /// ctime; so an atomic rename and a Kubernetes secret symlink swap count)
  /// since the last read attempt. A broken file is reported once per change,
  /// not on every call. Call periodically.
  std::optional<std::string> reload_if_changed();

  /// The key file given at construction ("" if none).
  const std::string& key_file() const { return key_file_; }

  /// How many distinct keys are in force now (list keys and file keys).
  size_t key_count() const;

private:
  using digest = std::array<unsigned char, 32>;

  struct entry {
    digest hash;
    role granted = role::none;
  };

  /// The keys in force: one entry per distinct digest, sorted by digest.
  struct table {
    std::vector<entry> entries;
  };

  /// What stat() said about the key file when it was last read.
  struct file_stamp {
    bool exists = false;
    uint64_t device = 0;
    uint64_t inode = 0;
    int64_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    bool operator==(const file_stamp& other) const;
  };

  std::shared_ptr<const table> current() const;
  /// Reads and parses the file, builds the new table and swaps it in.
  /// Caller holds reload_mutex_.
  std::optional<std::string> load_file_locked();

  std::vector<entry> list_entries_; // from the env/config lists, fixed
  std::string key_file_;
  bool auth_disabled_ = true;

  /// Read and written only with std::atomic_load / std::atomic_store.
  std::shared_ptr<const table> table_;

  std::mutex reload_mutex_; // serialises reload() and reload_if_changed()
  file_stamp stamp_;        // guarded by reload_mutex_
};

/// What a route requires.
enum class access { open, predict, admin };

/// Whether a caller presenting `presented_key` (the X-API-Key header, "" when
/// absent) may use a route that requires `required`: nullopt when allowed,
/// else the error to answer: 401 unauthorized for a missing or unknown key,
/// 403 forbidden for a predict key on an admin route. Open routes and a
/// store with auth disabled always pass. Messages never echo the key.
std::optional<api_error> check_access(const key_store& keys, access required,
                                      std::string_view presented_key);

} // namespace actorserve
