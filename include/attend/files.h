// Files written atomically: under a temporary name beside the final one, fsync'ed, then renamed
// into place, so a reader (or a run killed half-way) sees the old file or the new one, never a
// part. One implementation serves checkpoints, safetensors, corpora and translations.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace attend::io {

// Writes a file under a temporary name in the same directory (PATH.tmp.XXXXXX); Commit() fsyncs
// and renames it to `path`. Destroyed without Commit() (an error on the way), it removes the
// temporary file and `path` is untouched.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void Write(std::string_view bytes);
  // Overwrites bytes written earlier (a header patched once the sizes are known).
  void WriteAt(uint64_t offset, std::string_view bytes);
  // fsync and close: the bytes are on disk, `path` is not yet replaced. Commit() calls it.
  void Finish();
  // Renames the file into place and syncs the directory entry.
  void Commit();
  const std::string& path() const { return path_; }
  const std::string& temporary() const { return tmp_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes `contents` to `path` atomically.
void WriteFileAtomic(const std::string& path, std::string_view contents);
// Writes lines joined by "\n" (with a final "\n") atomically. A line containing '\n' is refused.
void WriteLinesAtomic(const std::string& path, const std::vector<std::string>& lines);

// Files written as one set: Add writes each to a temporary file beside its path (fsync'ed);
// Commit renames them into place in the order added (put last the file that says the set is
// complete). No path changes before Commit, and a set destroyed uncommitted (an error on the
// way) removes its temporaries. POSIX renames one file at a time: only a crash during Commit's
// renames can leave part of a set new.
class StagedFiles {
 public:
  StagedFiles();
  ~StagedFiles();
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;
  void Add(const std::string& path, std::string_view contents);
  void AddLines(const std::string& path, const std::vector<std::string>& lines);  // as above
  void Commit();

 private:
  std::vector<std::unique_ptr<AtomicFileWriter>> staged_;  // finished, not yet renamed
};

}  // namespace attend::io
