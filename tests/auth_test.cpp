// API keys and roles: key_store and check_access (http/auth.hpp).

#include "http/auth.hpp"

#include <atomic>
#include <filesystem>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "tests/test_support.hpp"

// Inside the namespace: with `using namespace actorserve` at global scope,
// `access` would clash with POSIX ::access() from <unistd.h>.
namespace actorserve {
namespace {

namespace fs = std::filesystem;
using testing::temp_dir;
using testing::write_file;

const std::string predict_key = "predict-key-0123456789abcdef";
const std::string admin_key = "admin-key-fedcba9876543210";
const std::string other_key = "not-a-configured-key-000000";

/// The status check_access answers: 200 when allowed.
int status_of(const key_store& keys, access required, std::string_view key) {
  auto error = check_access(keys, required, key);
  return error ? http_status(error->code) : 200;
}

/// The text of what key_store's constructor throws ("" if nothing).
std::string construction_error(const fs::path& file) {
  try {
    key_store keys{{}, {}, file.string()};
  } catch (const std::runtime_error& error) {
    return error.what();
  }
  return {};
}

/// Captures what spdlog's default logger writes while alive.
class log_capture {
public:
  log_capture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  }
  ~log_capture() { spdlog::set_default_logger(previous_); }
  std::string text() const { return text_.str(); }

private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream text_;
};

} // namespace

TEST(Auth, RoleNames) {
  EXPECT_EQ(to_string(role::none), "none");
  EXPECT_EQ(to_string(role::predict), "predict");
  EXPECT_EQ(to_string(role::admin), "admin");
}

TEST(Auth, NoKeysMeansAuthOffAndEveryCheckPasses) {
  key_store keys{{}, {}};
  EXPECT_TRUE(keys.auth_disabled());
  EXPECT_EQ(keys.key_count(), 0u);
  for (access required : {access::open, access::predict, access::admin}) {
    for (std::string_view key : {std::string_view{}, std::string_view{other_key}}) {
      EXPECT_FALSE(check_access(keys, required, key).has_value());
    }
  }
  EXPECT_EQ(keys.role_of(other_key), role::none);
  EXPECT_FALSE(keys.reload().has_value());
  EXPECT_FALSE(keys.reload_if_changed().has_value());
}

TEST(Auth, BlankListEntriesAreNoKeys) {
  key_store keys{{"", "  "}, {"\t"}};
  EXPECT_TRUE(keys.auth_disabled());
  EXPECT_EQ(keys.key_count(), 0u);
}

TEST(Auth, PredictKeyMayPredictButNotAdminister) {
  key_store keys{{predict_key}, {admin_key}};
  EXPECT_FALSE(keys.auth_disabled());
  EXPECT_EQ(keys.role_of(predict_key), role::predict);
  EXPECT_EQ(status_of(keys, access::open, predict_key), 200);
  EXPECT_EQ(status_of(keys, access::predict, predict_key), 200);
  auto error = check_access(keys, access::admin, predict_key);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, ec::forbidden);
  EXPECT_EQ(http_status(error->code), 403);
  EXPECT_EQ(error->message.find(predict_key), std::string::npos);
}

TEST(Auth, AdminKeyMayDoBoth) {
  key_store keys{{predict_key}, {admin_key}};
  EXPECT_EQ(keys.role_of(admin_key), role::admin);
  EXPECT_EQ(status_of(keys, access::open, admin_key), 200);
  EXPECT_EQ(status_of(keys, access::predict, admin_key), 200);
  EXPECT_EQ(status_of(keys, access::admin, admin_key), 200);
}

TEST(Auth, MissingWrongOrEmptyKeyIsUnauthorized) {
  key_store keys{{predict_key}, {admin_key}};
  for (access required : {access::predict, access::admin}) {
    for (const std::string& key :
         {std::string{}, other_key, predict_key + "x", predict_key.substr(1),
          admin_key.substr(0, admin_key.size() - 1), std::string(4096, 'a')}) {
      auto error = check_access(keys, required, key);
      ASSERT_TRUE(error.has_value()) << key.size();
      EXPECT_EQ(error->code, ec::unauthorized);
      EXPECT_EQ(http_status(error->code), 401);
      if (!key.empty()) {
        EXPECT_EQ(error->message.find(key), std::string::npos);
        EXPECT_EQ(error->field.find(key), std::string::npos);
      }
    }
  }
  EXPECT_EQ(keys.role_of(""), role::none);
  EXPECT_EQ(keys.role_of(other_key), role::none);
}

TEST(Auth, OpenRoutesNeedNoKeyWhenAuthIsOn) {
  key_store keys{{predict_key}, {}};
  EXPECT_EQ(status_of(keys, access::open, ""), 200);
  EXPECT_EQ(status_of(keys, access::open, other_key), 200);
}

TEST(Auth, ListEntriesAreTrimmedAndKeysAreExact) {
  key_store keys{{"  " + predict_key + "\t"}, {}};
  EXPECT_EQ(keys.role_of(predict_key), role::predict);
  // The presented key is compared as sent: the HTTP layer trims the header.
  EXPECT_EQ(keys.role_of(" " + predict_key), role::none);
  std::string upper = predict_key;
  upper[0] = 'P';
  EXPECT_EQ(keys.role_of(upper), role::none);
}

TEST(Auth, KeyInBothListsIsAdmin) {
  key_store keys{{admin_key, predict_key}, {admin_key}};
  EXPECT_EQ(keys.role_of(admin_key), role::admin);
  EXPECT_EQ(keys.role_of(predict_key), role::predict);
  EXPECT_EQ(keys.key_count(), 2u);
}

TEST(Auth, ShortKeysAreWarnedAboutWithoutPrintingThem) {
  temp_dir dir;
  auto file = dir.path() / "keys";
  write_file(file, "predict:filekey7\n");
  std::string logged;
  {
    log_capture capture;
    key_store keys{{"listkey1"}, {"listkey2"}, file.string()};
    EXPECT_EQ(keys.role_of("listkey1"), role::predict);
    EXPECT_EQ(keys.role_of("listkey2"), role::admin);
    EXPECT_EQ(keys.role_of("filekey7"), role::predict);
    logged = capture.text();
  }
  EXPECT_NE(logged.find("shorter than 16"), std::string::npos) << logged;
  EXPECT_NE(logged.find("line 1"), std::string::npos) << logged;
  for (const char* key : {"listkey1", "listkey2", "filekey7"})
    EXPECT_EQ(logged.find(key), std::string::npos) << logged;
}

TEST(Auth, KeyFileParsing) {
  temp_dir dir;
  auto file = dir.path() / "keys.txt";
  write_file(file, "\xEF\xBB\xBF# rotated 2024-05-01\n"
                   "\n"
                   "predict:file-predict-key-0001\n"
                   "   admin :  file-admin-key-00000001  \r\n"
                   "\t# predict:commented-out-key-0001\n"
                   "predict:key:with:colons-and-#-000001\n"
                   "   \n"
                   "admin:last-line-without-newline-01");
  key_store keys{{predict_key}, {admin_key}, file.string()};
  EXPECT_FALSE(keys.auth_disabled());
  EXPECT_EQ(keys.key_file(), file.string());
  EXPECT_EQ(keys.key_count(), 6u);
  EXPECT_EQ(keys.role_of("file-predict-key-0001"), role::predict);
  EXPECT_EQ(keys.role_of("file-admin-key-00000001"), role::admin);
  EXPECT_EQ(keys.role_of("key:with:colons-and-#-000001"), role::predict);
  EXPECT_EQ(keys.role_of("last-line-without-newline-01"), role::admin);
  EXPECT_EQ(keys.role_of("commented-out-key-0001"), role::none);
  EXPECT_EQ(keys.role_of("predict:file-predict-key-0001"), role::none);
  // The list keys stay beside the file's.
  EXPECT_EQ(keys.role_of(predict_key), role::predict);
  EXPECT_EQ(keys.role_of(admin_key), role::admin);
}

TEST(Auth, BadKeyFileLinesNameTheLineNeverTheKey) {
  temp_dir dir;
  auto file = dir.path() / "keys";
  struct bad_case {
    std::string content;
    std::string line;
    std::string secret;
  };
  const std::vector<bad_case> cases = {
      {"# ok\npredict:good-key-000000000001\nowner:secret-key-aaaaaaaaaaa1\n", "line 3",
       "secret-key-aaaaaaaaaaa1"},
      {"\n\n\n\nbare-secret-key-bbbbbbbbbb2\n", "line 5", "bare-secret-key-bbbbbbbbbb2"},
      {"Admin:secret-key-cccccccccc3\n", "line 1", "secret-key-cccccccccc3"},
      {"predict:good-key-000000000001\npredict:   \n", "line 2", ""},
      {"predict:good-key-000000000001\n:secret-key-ddddddddd4\n", "line 2",
       "secret-key-ddddddddd4"},
  };
  for (const bad_case& bad : cases) {
    write_file(file, bad.content);
    std::string error = construction_error(file);
    EXPECT_NE(error.find(bad.line), std::string::npos) << error;
    EXPECT_NE(error.find(file.string()), std::string::npos) << error;
    if (!bad.secret.empty()) {
      EXPECT_EQ(error.find(bad.secret), std::string::npos) << error;
    }
  }
}

TEST(Auth, UnreadableKeyFileIsAConstructionError) {
  temp_dir dir;
  EXPECT_NE(construction_error(dir.path() / "missing").find("cannot open"),
            std::string::npos);
  EXPECT_NE(construction_error(dir.path()).find("not a regular file"), std::string::npos);
}

TEST(Auth, ConfiguredButEmptyKeyFileKeepsAuthOnAndLetsNobodyIn) {
  temp_dir dir;
  auto file = dir.path() / "keys";
  write_file(file, "# no keys yet\n");
  key_store keys{{}, {}, file.string()};
  EXPECT_FALSE(keys.auth_disabled());
  EXPECT_EQ(keys.key_count(), 0u);
  EXPECT_EQ(status_of(keys, access::predict, other_key), 401);
  EXPECT_EQ(status_of(keys, access::predict, ""), 401);
  EXPECT_EQ(status_of(keys, access::open, ""), 200);
}

TEST(Auth, ReloadPicksUpARotatedKeyAndDropsTheOldOne) {
  temp_dir dir;
  auto file = dir.path() / "keys";
  write_file(file, "admin:old-admin-key-0000000001\n");
  key_store keys{{predict_key}, {}, file.string()};
  EXPECT_EQ(keys.role_of("old-admin-key-0000000001"), role::admin);

  write_file(file, "admin:new-admin-key-0000000002\npredict:new-predict-key-00000003\n");
  EXPECT_FALSE(keys.reload().has_value());
  EXPECT_EQ(keys.role_of("old-admin-key-0000000001"), role::none);
  EXPECT_EQ(status_of(keys, access::admin, "old-admin-key-0000000001"), 401);
  EXPECT_EQ(keys.role_of("new-admin-key-0000000002"), role::admin);
  EXPECT_EQ(keys.role_of("new-predict-key-00000003"), role::predict);
  EXPECT_EQ(keys.role_of(predict_key), role::predict); // list keys survive
  EXPECT_EQ(keys.key_count(), 3u);
}

TEST(Auth, ReloadOfABrokenFileKeepsTheOldKeys) {
  temp_dir dir;
  auto file = dir.path() / "keys";
  write_file(file, "admin:kept-admin-key-000000001\n");
  key_store keys{{}, {}, file.string()};

  write_file(file, "admin:replacement-key-0000001\nsuperuser:secret-key-eeeeeeeee5\n");
  auto error = keys.reload();
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("line 2"), std::string::npos) << *error;
  EXPECT_EQ(error->find("secret-key-eeeeeeeee5"), std::string::npos) << *error;
  EXPECT_EQ(error->find("replacement-key-0000001"), std::string::npos) << *error;
  EXPECT_EQ(keys.role_of("kept-admin-key-000000001"), role::admin);
  EXPECT_EQ(keys.role_of("replacement-key-0000001"), role::none); // all or nothing

  fs::remove(file);
  error = keys.reload();
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("cannot open"), std::string::npos) << *error;
  EXPECT_EQ(keys.role_of("kept-admin-key-000000001"), role::admin);
}

TEST(Auth, ReloadIfChangedReadsOnlyChangedFiles) {
  temp_dir dir;
  auto file = dir.path() / "keys";
  write_file(file, "predict:first-predict-key-00001\n");
  key_store keys{{}, {}, file.string()};
  EXPECT_FALSE(keys.reload_if_changed().has_value()); // unchanged
  EXPECT_EQ(keys.role_of("first-predict-key-00001"), role::predict);

  write_file(file, "predict:second-predict-key-0000002\n");
  EXPECT_FALSE(keys.reload_if_changed().has_value());
  EXPECT_EQ(keys.role_of("first-predict-key-00001"), role::none);
  EXPECT_EQ(keys.role_of("second-predict-key-0000002"), role::predict);

  // A broken file is reported once per change, not on every poll.
  write_file(file, "predict:second-predict-key-0000002\nbroken line\n");
  auto error = keys.reload_if_changed();
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("line 2"), std::string::npos) << *error;
  EXPECT_FALSE(keys.reload_if_changed().has_value());
  EXPECT_EQ(keys.role_of("second-predict-key-0000002"), role::predict);

  // A missing file likewise; its return is a change.
  fs::remove(file);
  EXPECT_TRUE(keys.reload_if_changed().has_value());
  EXPECT_FALSE(keys.reload_if_changed().has_value());
  EXPECT_EQ(keys.role_of("second-predict-key-0000002"), role::predict);
  write_file(file, "admin:third-admin-key-000000003\n");
  EXPECT_FALSE(keys.reload_if_changed().has_value());
  EXPECT_EQ(keys.role_of("second-predict-key-0000002"), role::none);
  EXPECT_EQ(keys.role_of("third-admin-key-000000003"), role::admin);
}

TEST(Auth, ReloadIfChangedSeesAnAtomicRenameOfTheSameSize) {
  temp_dir dir;
  auto file = dir.path() / "keys";
  write_file(file, "admin:rotation-key-aaaaaaaa01\n");
  key_store keys{{}, {}, file.string()};
  auto written = fs::last_write_time(file);

  // Same size, same mtime: only the inode tells the files apart.
  auto staged = dir.path() / "keys.new";
  write_file(staged, "admin:rotation-key-bbbbbbbb02\n");
  fs::last_write_time(staged, written);
  fs::rename(staged, file);
  EXPECT_FALSE(keys.reload_if_changed().has_value());
  EXPECT_EQ(keys.role_of("rotation-key-aaaaaaaa01"), role::none);
  EXPECT_EQ(keys.role_of("rotation-key-bbbbbbbb02"), role::admin);
}

TEST(Auth, ConcurrentRoleOfWhileReloading) {
  temp_dir dir;
  auto file = dir.path() / "keys";
  const std::string rotating = "rotating-role-key-000000001";
  const std::string first_only = "first-file-only-key-0000001";
  const std::string second_only = "second-file-only-key-000002";
  const std::string first = "admin:" + rotating + "\npredict:" + first_only + "\n";
  const std::string second = "predict:" + rotating + "\npredict:" + second_only + "\n";
  write_file(file, first);
  log_capture quiet; // 200 "key file read" lines
  key_store keys{{predict_key}, {admin_key}, file.string()};

  std::atomic<bool> done{false};
  std::atomic<int> wrong{0};
  std::atomic<long> answers{0};
  auto reader = [&] {
    long mine = 0;
    while (!done.load(std::memory_order_relaxed) || mine < 100) {
      role r = keys.role_of(rotating);
      if (r != role::admin && r != role::predict)
        ++wrong;
      r = keys.role_of(first_only);
      if (r != role::predict && r != role::none)
        ++wrong;
      r = keys.role_of(second_only);
      if (r != role::predict && r != role::none)
        ++wrong;
      if (keys.role_of(predict_key) != role::predict ||
          keys.role_of(admin_key) != role::admin)
        ++wrong;
      if (keys.role_of(other_key) != role::none)
        ++wrong;
      if (check_access(keys, access::predict, rotating).has_value())
        ++wrong;
      ++mine;
    }
    answers += mine;
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i)
    readers.emplace_back(reader);

  int failed_reloads = 0;
  for (int i = 0; i < 200; ++i) {
    write_file(file, i % 2 == 0 ? second : first);
    if (keys.reload().has_value())
      ++failed_reloads;
  }
  done = true;
  for (std::thread& thread : readers)
    thread.join();

  EXPECT_EQ(failed_reloads, 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GE(answers.load(), 400);
  // 200 reloads end on `first`.
  EXPECT_EQ(keys.role_of(rotating), role::admin);
  EXPECT_EQ(keys.role_of(first_only), role::predict);
  EXPECT_EQ(keys.role_of(second_only), role::none);
}

} // namespace actorserve
