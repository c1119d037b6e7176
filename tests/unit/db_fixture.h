#pragma once
// A gtest fixture with a fresh, migrated database and a ManualClock, for tests of the
// stores built on them. Parameterised by the store engine: each suite that derives
// from it runs on SQLite (a file in a temporary directory) and on PostgreSQL (a new
// database in the tests' own server, tests/unit/pg_server.h); instantiate it with
// WMK_INSTANTIATE_ON_BOTH_ENGINES(Suite).

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <utility>

#include "core/store/db.h"
#include "core/store/schema.h"
#include "core/util/clock.h"
#include "tests/unit/pg_server.h"
#include "tests/unit/test_util.h"

namespace wmk::test {

class DbTest : public ::testing::TestWithParam<store::Engine> {
 protected:
  DbTest() = default;
  explicit DbTest(std::int64_t clock_start) : clock(clock_start) {}

  // Derived fixtures call this first and return if HasFatalFailure() or IsSkipped().
  void SetUp() override {
    WMK_NEW_TEST_DATABASE(database, GetParam(), dir.path() + "/t.db");
    auto d = database.open();
    ASSERT_TRUE(d.ok()) << d.error().message;
    db.emplace(std::move(d).value());
    ASSERT_TRUE(store::migrate(*db).ok());
  }

  TempDir dir;
  util::ManualClock clock;
  TestDatabase database;
  std::optional<store::Db> db;
};

}  // namespace wmk::test

#define WMK_INSTANTIATE_ON_BOTH_ENGINES(Suite)                                           \
  INSTANTIATE_TEST_SUITE_P(                                                              \
      Engines, Suite,                                                                    \
      ::testing::Values(::wmk::store::Engine::sqlite, ::wmk::store::Engine::postgresql), \
      ::wmk::test::engine_test_name)
