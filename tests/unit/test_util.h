#pragma once
// Helpers shared by the unit tests.

#include <cstdlib>
#include <filesystem>
#include <string>

namespace wmk::test {

// A fresh directory under $TMPDIR, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wmk-test-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr)
      throw std::runtime_error("mkdtemp failed");
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace wmk::test
