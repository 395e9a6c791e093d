#include "http/auth.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include "messages/digest.hpp"

namespace actorserve {

namespace {

/// A key file larger than this is a mistake (a wrong path), not a key list.
constexpr size_t max_key_file_bytes = 1024 * 1024;

void cleanse(std::string& text) {
  if (!text.empty())
    OPENSSL_cleanse(text.data(), text.size());
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back()))
    text.remove_suffix(1);
  return text;
}

std::string errno_text(int error) {
  return std::error_code{error, std::generic_category()}.message();
}

} // namespace

std::string_view to_string(role r) {
  switch (r) {
    case role::predict:
      return "predict";
    case role::admin:
      return "admin";
    case role::none:
      break;
  }
  return "none";
}

bool key_store::file_stamp::operator==(const file_stamp& other) const {
  return exists == other.exists && device == other.device && inode == other.inode &&
         size == other.size && mtime_ns == other.mtime_ns && ctime_ns == other.ctime_ns;
}

namespace {

template <class Stamp> Stamp stamp_of(const struct stat& info) {
  Stamp stamp;
  stamp.exists = true;
  stamp.device = static_cast<uint64_t>(info.st_dev);
  stamp.inode = static_cast<uint64_t>(info.st_ino);
  stamp.size = static_cast<int64_t>(info.st_size);
  stamp.mtime_ns = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 +
                   static_cast<int64_t>(info.st_mtim.tv_nsec);
  stamp.ctime_ns = static_cast<int64_t>(info.st_ctim.tv_sec) * 1000000000 +
                   static_cast<int64_t>(info.st_ctim.tv_nsec);
  return stamp;
}

/// Reads the whole file into `content` and describes what was read in
/// `info` (fstat of the opened file, so stamp and content belong together).
std::optional<std::string> read_key_file(const std::string& path, std::string& content,
                                         struct stat& info) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return "cannot open key file " + path + ": " + errno_text(errno);
  std::optional<std::string> failure;
  if (::fstat(fd, &info) != 0) {
    failure = "cannot stat key file " + path + ": " + errno_text(errno);
  } else if (!S_ISREG(info.st_mode)) {
    failure = "key file " + path + " is not a regular file";
  } else if (static_cast<uint64_t>(info.st_size) > max_key_file_bytes) {
    failure = "key file " + path + " is larger than " +
              std::to_string(max_key_file_bytes) + " bytes";
  } else {
    content.resize(max_key_file_bytes + 1);
    size_t used = 0;
    while (used < content.size()) {
      ssize_t got = ::read(fd, content.data() + used, content.size() - used);
      if (got < 0 && errno == EINTR)
        continue;
      if (got < 0) {
        failure = "cannot read key file " + path + ": " + errno_text(errno);
        break;
      }
      if (got == 0)
        break;
      used += static_cast<size_t>(got);
    }
    if (!failure && used > max_key_file_bytes)
      failure = "key file " + path + " is larger than " +
                std::to_string(max_key_file_bytes) + " bytes";
    content.resize(used); // the bytes past `used` were never written
  }
  ::close(fd);
  return failure;
}

} // namespace

key_store::key_store(std::vector<std::string> predict_keys,
                     std::vector<std::string> admin_keys, std::string key_file)
    : key_file_(std::move(key_file)) {
  auto add_list = [this](std::vector<std::string>& keys, role granted) {
    size_t position = 0;
    for (std::string& key : keys) {
      ++position;
      std::string_view text = trim(key);
      if (!text.empty()) {
        if (text.size() < recommended_key_length)
          spdlog::warn("{} key #{} of the configured key list is shorter than {} "
                       "characters; use long random keys",
                       to_string(granted), position, recommended_key_length);
        list_entries_.push_back(entry{sha256_of(text), granted});
      }
      cleanse(key);
    }
  };
  add_list(predict_keys, role::predict);
  add_list(admin_keys, role::admin);
  auth_disabled_ = list_entries_.empty() && key_file_.empty();

  std::lock_guard<std::mutex> guard{reload_mutex_};
  if (key_file_.empty()) {
    load_file_locked(); // no file: publishes the list keys only
  } else if (auto failure = load_file_locked()) {
    throw std::runtime_error(*failure);
  }
}

std::shared_ptr<const key_store::table> key_store::current() const {
  return std::atomic_load(&table_);
}

size_t key_store::key_count() const {
  return current()->entries.size();
}

role key_store::role_of(std::string_view presented_key) const {
  if (presented_key.empty())
    return role::none;
  digest presented = sha256_of(presented_key);
  std::shared_ptr<const table> keys = current();
  // Entries hold distinct digests, so at most one matches: OR-ing the masked
  // roles of all entries gives the match's role without branching on it.
  uint8_t granted = 0;
  for (const entry& candidate : keys->entries) {
    auto differs = static_cast<unsigned>(
        CRYPTO_memcmp(presented.data(), candidate.hash.data(), presented.size()) != 0);
    auto mask = static_cast<uint8_t>(differs - 1u); // 0xff on a match, else 0
    granted |= static_cast<uint8_t>(static_cast<uint8_t>(candidate.granted) & mask);
  }
  OPENSSL_cleanse(presented.data(), presented.size());
  return static_cast<role>(granted);
}

std::optional<std::string> key_store::load_file_locked() {
  std::vector<entry> entries = list_entries_;
  if (!key_file_.empty()) {
    std::string content;
    struct stat info {};
    std::optional<std::string> failure = read_key_file(key_file_, content, info);
    // Remember what was read, good or bad, so that reload_if_changed()
    // reports a broken file once per change rather than on every poll.
    if (!failure)
      stamp_ = stamp_of<file_stamp>(info);
    else if (::stat(key_file_.c_str(), &info) == 0)
      stamp_ = stamp_of<file_stamp>(info);
    else
      stamp_ = file_stamp{};
    if (failure) {
      cleanse(content);
      return failure;
    }

    std::string_view rest = content;
    // A UTF-8 byte order mark is not part of the first line's role.
    if (rest.substr(0, 3) == "\xEF\xBB\xBF")
      rest.remove_prefix(3);
    size_t line_number = 0;
    while (!rest.empty() && !failure) {
      ++line_number;
      size_t end = rest.find('\n');
      std::string_view line = trim(rest.substr(0, end));
      rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
      if (line.empty() || line.front() == '#')
        continue;
      auto where = [&] {
        return "key file " + key_file_ + ": line " + std::to_string(line_number) + ": ";
      };
      // Never quote the line: it may hold a key (a missing or mistyped role).
      size_t colon = line.find(':');
      std::string_view name = trim(line.substr(0, colon));
      role granted = role::none;
      if (colon != std::string_view::npos && name == "predict")
        granted = role::predict;
      else if (colon != std::string_view::npos && name == "admin")
        granted = role::admin;
      if (granted == role::none) {
        failure = where() + "unknown or missing role; expected 'predict:<key>' or "
                            "'admin:<key>'";
        break;
      }
      std::string_view key = trim(line.substr(colon + 1));
      if (key.empty()) {
        failure = where() + "empty key";
        break;
      }
      if (key.size() < recommended_key_length)
        spdlog::warn("{}{} key is shorter than {} characters; use long random keys",
                     where(), to_string(granted), recommended_key_length);
      entries.push_back(entry{sha256_of(key), granted});
    }
    cleanse(content);
    if (failure)
      return failure;
  }

  // One entry per digest, keeping the highest role of a key listed twice.
  std::sort(entries.begin(), entries.end(), [](const entry& a, const entry& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.granted > b.granted;
  });
  entries.erase(
      std::unique(entries.begin(), entries.end(),
                  [](const entry& a, const entry& b) { return a.hash == b.hash; }),
      entries.end());
  auto fresh = std::make_shared<table>();
  fresh->entries = std::move(entries);
  size_t count = fresh->entries.size();
  std::atomic_store(&table_, std::shared_ptr<const table>{std::move(fresh)});
  if (!key_file_.empty())
    spdlog::info("key file {} read: {} keys in force", key_file_, count);
  return std::nullopt;
}

std::optional<std::string> key_store::reload() {
  if (key_file_.empty())
    return std::nullopt;
  std::lock_guard<std::mutex> guard{reload_mutex_};
  return load_file_locked();
}

std::optional<std::string> key_store::reload_if_changed() {
  if (key_file_.empty())
    return std::nullopt;
  std::lock_guard<std::mutex> guard{reload_mutex_};
  struct stat info {};
  file_stamp now =
      ::stat(key_file_.c_str(), &info) == 0 ? stamp_of<file_stamp>(info) : file_stamp{};
  if (now == stamp_)
    return std::nullopt;
  return load_file_locked();
}

std::optional<api_error> check_access(const key_store& keys, access required,
                                      std::string_view presented_key) {
  if (required == access::open || keys.auth_disabled())
    return std::nullopt;
  if (presented_key.empty())
    return api_error{ec::unauthorized, "missing API key: send it in the X-API-Key header",
                     "X-API-Key"};
  role granted = keys.role_of(presented_key);
  if (granted == role::none)
    return api_error{ec::unauthorized, "invalid API key", "X-API-Key"};
  if (required == access::admin && granted != role::admin)
    return api_error{ec::forbidden, "this endpoint requires a key with the admin role",
                     "X-API-Key"};
  return std::nullopt;
}

} // namespace actorserve
