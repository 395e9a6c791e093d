#pragma once

// One real server for a whole test suite: a repository with the generated
// digits and affine models, served by the actorserve binary from the suite's
// first test to its last. Derive the suite's fixture from it (CRTP); a suite
// may declare `static std::vector<std::string> server_flags()` (extra flags)
// and `static std::vector<std::string> digit_versions()` (empty: every one).

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/test_support.hpp"

namespace actorserve::testing {

template <class Suite> class served_suite : public ::testing::Test {
public:
  static void SetUpTestSuite() {
    repository_ = std::make_unique<temp_dir>();
    copy_model("digits", repository_->path(), Suite::digit_versions());
    copy_model("affine", repository_->path());
    std::vector<std::string> args{"--model-repository", repository_->path().string()};
    for (auto& flag : Suite::server_flags())
      args.push_back(std::move(flag));
    server_ = std::make_unique<server_process>(std::move(args));
  }

  static void TearDownTestSuite() {
    server_.reset();
    repository_.reset();
  }

  // Defaults of the suite's hooks (a suite declares its own public).
  static std::vector<std::string> server_flags() { return {}; }
  static std::vector<std::string> digit_versions() { return {"1"}; }

protected:
  static server_process& server() { return *server_; }

private:
  inline static std::unique_ptr<temp_dir> repository_;
  inline static std::unique_ptr<server_process> server_;
};

} // namespace actorserve::testing
