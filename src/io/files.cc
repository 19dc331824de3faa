// Atomic files (attend/files.h): the one place that creates, syncs and renames temporaries.
#include "attend/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "attend/error.h"

namespace attend::io {
namespace {

std::string DirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

std::string JoinLines(const std::string& path, const std::vector<std::string>& lines) {
  std::string out;
  size_t total = 0;
  for (const std::string& l : lines) total += l.size() + 1;
  out.reserve(total);
  for (size_t i = 0; i < lines.size(); ++i) {
    ATTEND_CHECK(lines[i].find('\n') == std::string::npos, "WriteLinesAtomic ", path, ": line ",
                 i + 1, " contains a newline");
    out += lines[i];
    out += '\n';
  }
  return out;
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path) {
  // A unique temporary name in the same directory: rename() is atomic only within a file system.
  tmp_ = path + ".tmp.XXXXXX";
  fd_ = ::mkstemp(tmp_.data());
  if (fd_ < 0) {
    const std::string err = ErrnoText();
    tmp_ = path + ".tmp.XXXXXX";
    ATTEND_CHECK(false, path, ": cannot create a temporary file ", tmp_, " in ", DirectoryOf(path),
                 ": ", err);
  }
  if (::fchmod(fd_, 0644) != 0) {
    const std::string err = ErrnoText();
    ::close(fd_);
    ::unlink(tmp_.c_str());
    fd_ = -1;
    ATTEND_CHECK(false, tmp_, ": chmod failed: ", err);
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFileWriter::Write(std::string_view bytes) {
  ATTEND_CHECK(fd_ >= 0, path_, ": write after the file was finished");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ATTEND_CHECK(n > 0, tmp_, ": write failed: ", ErrnoText());
    done += static_cast<size_t>(n);
  }
}

void AtomicFileWriter::WriteAt(uint64_t offset, std::string_view bytes) {
  ATTEND_CHECK(fd_ >= 0, path_, ": write after the file was finished");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n =
        ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    ATTEND_CHECK(n > 0, tmp_, ": write failed: ", ErrnoText());
    done += static_cast<size_t>(n);
  }
}

void AtomicFileWriter::Finish() {
  if (fd_ < 0) return;
  // The data must be on disk before the rename makes it the file at `path`.
  ATTEND_CHECK(::fsync(fd_) == 0, tmp_, ": fsync failed: ", ErrnoText());
  const int fd = fd_;
  fd_ = -1;  // even a failed close releases the descriptor
  ATTEND_CHECK(::close(fd) == 0, tmp_, ": close failed: ", ErrnoText());
}

void AtomicFileWriter::Commit() {
  ATTEND_CHECK(!committed_, path_, ": committed twice");
  Finish();
  ATTEND_CHECK(::rename(tmp_.c_str(), path_.c_str()) == 0, path_, ": renaming ", tmp_,
               " failed: ", ErrnoText());
  committed_ = true;
  // And the rename itself must be durable: sync the directory entry.
  const int dfd = ::open(DirectoryOf(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void WriteFileAtomic(const std::string& path, std::string_view contents) {
  StagedFiles file;
  file.Add(path, contents);
  file.Commit();
}

void WriteLinesAtomic(const std::string& path, const std::vector<std::string>& lines) {
  WriteFileAtomic(path, JoinLines(path, lines));
}

StagedFiles::StagedFiles() = default;
StagedFiles::~StagedFiles() = default;  // each uncommitted writer removes its temporary

void StagedFiles::Add(const std::string& path, std::string_view contents) {
  staged_.push_back(std::make_unique<AtomicFileWriter>(path));
  staged_.back()->Write(contents);
  staged_.back()->Finish();
}

void StagedFiles::AddLines(const std::string& path, const std::vector<std::string>& lines) {
  Add(path, JoinLines(path, lines));
}

void StagedFiles::Commit() {
  // A path that is a directory would stop the renames half-way: refused before the first.
  for (const auto& file : staged_) {
    struct stat st;
    ATTEND_CHECK(::stat(file->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode), file->path(),
                 ": is a directory; nothing was written");
  }
  while (!staged_.empty()) {
    staged_.front()->Commit();
    staged_.erase(staged_.begin());
  }
}

}  // namespace attend::io
