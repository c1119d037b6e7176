// The build's line between core and the entry points (cmake/check_boundary.cmake):
// run on what a cli/ or cgi/ file would be, the check refuses an include of GPGME or
// SQLite and a call to SQLite, GPGME, OpenSSL or GMime, and passes a clean file.
// Objects are compiled here by the real compiler; symbols read by the real nm.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/unit/keys_test_util.h"

namespace wmk {

namespace {

using test::run_cmd;

class Boundary : public ::testing::Test {
 protected:
  // Compiles source as a cli/cgi file would be and runs the check on it.
  test::CmdResult check(const std::string& name, const std::string& source) {
    std::string src = dir_.path() + "/" + name + ".cc";
    std::string obj = dir_.path() + "/" + name + ".o";
    test::spit(src, source);
    auto cc = run_cmd({WEBMAILKEY_CXX_COMPILER, "-std=c++20", "-c", src, "-o", obj});
    EXPECT_EQ(cc.status, 0) << cc.err;
    return run_cmd({WEBMAILKEY_CMAKE_COMMAND, "-DSOURCES=" + src, "-DOBJECTS=" + obj,
                    std::string("-DNM=") + WEBMAILKEY_NM, "-P",
                    std::string(WEBMAILKEY_SOURCE_DIR) + "/cmake/check_boundary.cmake"});
  }

  test::TempDir dir_;
};

TEST_F(Boundary, PassesCodeThatOnlyCallsCore) {
  auto r = check("clean",
                 "#include <string>\n"
                 "namespace wmk::webflow { int open_for_decrypt(const std::string&); }\n"
                 "int f() { return wmk::webflow::open_for_decrypt(\"x\"); }\n");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
}

TEST_F(Boundary, RefusesLibraryCallsOutsideCore) {
  struct Case {
    const char* name;
    const char* code;
    const char* named;
  };
  const Case cases[] = {
      {"sqlite",
       "extern \"C\" int sqlite3_open(const char*, void**);\n"
       "int f() { return sqlite3_open(\"x\", nullptr); }\n",
       "sqlite3_open"},
      {"gpgme", "extern \"C\" int gpgme_new(void**);\nint f() { return gpgme_new(nullptr); }\n",
       "gpgme_new"},
      {"openssl",
       "extern \"C\" void* EVP_CIPHER_CTX_new();\nvoid* f() { return EVP_CIPHER_CTX_new(); }\n",
       "EVP_CIPHER_CTX_new"},
      {"gmime",
       "extern \"C\" void* g_mime_message_new(int);\n"
       "void* f() { return g_mime_message_new(1); }\n",
       "g_mime_message_new"},
      {"libetpan",
       "extern \"C\" void* mailimap_new(unsigned long, void*);\n"
       "void* f() { return mailimap_new(0, nullptr); }\n",
       "mailimap_new"},
  };
  for (const auto& c : cases) {
    auto r = check(c.name, c.code);
    EXPECT_NE(r.status, 0) << c.name;
    EXPECT_NE((r.out + r.err).find(c.named), std::string::npos) << r.out << r.err;
  }
}

TEST_F(Boundary, RefusesIncludesOfTheLibrariesHeaders) {
  for (const char* header : {"gpgme.h", "sqlite3.h"}) {
    auto r = check(std::string("inc_") + (header[0] == 'g' ? "gpgme" : "sqlite"),
                   std::string("#include <") + header + ">\nint f() { return 0; }\n");
    EXPECT_NE(r.status, 0) << header;
    EXPECT_NE((r.out + r.err).find(header), std::string::npos) << r.out << r.err;
  }
}

// ---- the shape of core/ (cmake/check_core_shape.cmake)

class CoreShape : public ::testing::Test {
 protected:
  // Runs the check on a tree under the temporary directory, or on another root.
  test::CmdResult check(const std::string& root) {
    return run_cmd({WEBMAILKEY_CMAKE_COMMAND, "-DROOT=" + root, "-P",
                    std::string(WEBMAILKEY_SOURCE_DIR) + "/cmake/check_core_shape.cmake"});
  }
  void file(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories(
        std::filesystem::path(dir_.path() + "/" + rel).parent_path());
    test::spit(dir_.path() + "/" + rel, text);
  }
  test::TempDir dir_;
};

TEST_F(CoreShape, TheSourceTreeIsInShape) {
  auto r = check(WEBMAILKEY_SOURCE_DIR);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
}

TEST_F(CoreShape, PassesOwnersWritingTheirTablesAndAppIncludingStore) {
  file("core/app/app.cc", "#include \"core/store/db.h\"\n#include \"core/config/config.h\"\n");
  file("core/session/session.cc",
       "// UPDATE this comment: prose is not SQL\n"
       "const char* a = \"UPDATE sessions SET notice = NULL WHERE id = ?\";\n"
       "const char* b = \"INSERT INTO sessions (id) VALUES (?) ON CONFLICT (id) DO UPDATE SET \"\n"
       "                \"id = excluded.id\";\n");
  file("core/keys/keystore.h", "#include \"core/store/db.h\"\n#include \"core/auth/users.h\"\n");
  file("core/contacts/smime_collect.cc",
       "#include \"core/mail/mime.h\"\n#include \"core/reader/reader.h\"\n"
       "#include \"core/bindings/bindings.h\"\n");
  file("core/webflow/flow.cc", "#include \"core/contacts/contacts.h\"\n");
  auto r = check(dir_.path());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
}

// Regression: core/app/app.cc included core/keys/gnupg_home.h while keystore.h included
// app.h (issue 14); init moved to core/setup.
TEST_F(CoreShape, RefusesTheAppKeysLoop) {
  file("core/app/app.cc", "#include \"core/app/app.h\"\n#include \"core/keys/gnupg_home.h\"\n");
  file("core/keys/keystore.h", "#include \"core/app/app.h\"\n");
  auto r = check(dir_.path());
  EXPECT_NE(r.status, 0);
  EXPECT_NE((r.out + r.err).find("core/app may not include core/keys"), std::string::npos)
      << r.out << r.err;
}

// Regression: mail/outgoing.cc included core/contacts while contacts included mail,
// bindings.cc included contacts while contacts.h included bindings, and keystore.h
// took the whole App (issue 14). Each upward include fails on its own.
TEST_F(CoreShape, RefusesAnUpwardIncludeAboveTheFoundation) {
  struct Case {
    const char* file;
    const char* include;
    const char* says;
  };
  const Case cases[] = {
      {"core/mail/outgoing.cc", "core/contacts/contacts.h",
       "core/mail may not include core/contacts"},
      {"core/bindings/bindings.cc", "core/contacts/contacts.h",
       "core/bindings may not include core/contacts"},
      {"core/reader/reader.h", "core/contacts/contacts.h",
       "core/reader may not include core/contacts"},
      {"core/keys/keystore.h", "core/app/app.h", "core/keys may not include core/app"},
      {"core/keys/keystore.cc", "core/mail/mime.h", "core/keys may not include core/mail"},
      {"core/grant/grant.cc", "core/webflow/flow.h", "core/grant may not include core/webflow"},
  };
  for (const auto& c : cases) {
    test::TempDir tree;
    std::filesystem::create_directories(
        std::filesystem::path(tree.path() + "/" + c.file).parent_path());
    test::spit(tree.path() + "/" + c.file, std::string("#include \"") + c.include + "\"\n");
    auto r = check(tree.path());
    EXPECT_NE(r.status, 0) << c.file;
    EXPECT_NE((r.out + r.err).find(c.says), std::string::npos) << c.file << "\n" << r.out << r.err;
  }
}

TEST_F(CoreShape, RefusesSetupIncludedInsideCore) {
  file("core/keys/keystore.cc", "#include \"core/setup/init.h\"\n");
  auto r = check(dir_.path());
  EXPECT_NE(r.status, 0);
  EXPECT_NE((r.out + r.err).find("core/setup is for the entry points only"), std::string::npos)
      << r.out << r.err;
}

// Regression: core/grant appended to sessions.notice itself (issue 14).
TEST_F(CoreShape, RefusesATableWrittenOutsideItsOwner) {
  const char* writes[] = {
      "UPDATE sessions\n   SET notice = ?1 WHERE id = ?2", "DELETE FROM sessions WHERE id = ?",
      "INSERT INTO sessions (id) VALUES (?)", "INSERT OR IGNORE INTO sessions (id) VALUES (?)"};
  for (const char* sql : writes) {
    file("core/grant/grant.cc", std::string("const char* q = R\"sql(") + sql + ")sql\";\n");
    auto r = check(dir_.path());
    EXPECT_NE(r.status, 0) << sql;
    EXPECT_NE((r.out + r.err).find("sessions belongs to core/session"), std::string::npos)
        << sql << "\n"
        << r.out << r.err;
  }
}

TEST_F(CoreShape, RefusesATableWithoutAnOwner) {
  file("core/mail/index.cc", "const char* q = \"INSERT INTO mail_cache (k) VALUES (?)\";\n");
  auto r = check(dir_.path());
  EXPECT_NE(r.status, 0);
  EXPECT_NE((r.out + r.err).find("the table mail_cache has no owner"), std::string::npos)
      << r.out << r.err;
}

}  // namespace

}  // namespace wmk
