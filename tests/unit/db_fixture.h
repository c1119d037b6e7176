#pragma once
// A gtest fixture with a fresh, migrated SQLite database in a temporary directory and
// a ManualClock, for tests of the stores built on them.

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <utility>

#include "core/store/db.h"
#include "core/store/schema.h"
#include "core/util/clock.h"
#include "tests/unit/test_util.h"

namespace wmk::test {

class DbTest : public ::testing::Test {
 protected:
  DbTest() = default;
  explicit DbTest(std::int64_t clock_start) : clock(clock_start) {}

  // Derived fixtures call this first and return if HasFatalFailure().
  void SetUp() override {
    auto d = store::Db::open(dir.path() + "/t.db", store::OpenMode::create_if_missing);
    ASSERT_TRUE(d.ok());
    db.emplace(std::move(d).value());
    ASSERT_TRUE(store::migrate(*db).ok());
  }

  TempDir dir;
  util::ManualClock clock;
  std::optional<store::Db> db;
};

}  // namespace wmk::test
