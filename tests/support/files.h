// Files for tests: a fresh directory per test, and whole-file reads and writes.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace attend::testing {

// A fresh, empty directory named after the process and the running test, removed at the end.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // The path of `name` inside the directory.
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The bytes of `path` ("" when it cannot be read).
std::string ReadFile(const std::string& path);
// Writes `bytes` to `path`, creating its parent directories; a failed test when that fails.
void WriteFile(const std::string& path, const std::string& bytes);
// The lines of `text`, without their '\n' (a last line without one counts too).
std::vector<std::string> Lines(const std::string& text);

}  // namespace attend::testing
