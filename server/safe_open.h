// Opening a client-named path under the daemon's allowed roots without being
// led elsewhere by symlinks: every component below the root is opened with
// O_NOFOLLOW relative to its parent's descriptor, ".." is refused, and the
// final object must be a regular file. The returned descriptor is the file that
// was checked; reading from it (not from the path again) is what keeps a later
// swap of the path for a symlink from mattering.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace candies::server {

// Owns a file descriptor.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileDescriptor& operator=(FileDescriptor&& o) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor();
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// `path` must be absolute and lie (lexically) under one of `roots` (absolute
// directories, themselves resolved once with realpath). PermissionDenied names
// only the client's path, never what a symlink points to.
absl::StatusOr<FileDescriptor> OpenBeneath(const std::string& path,
                                           const std::vector<std::string>& roots);

// Copies everything readable from `fd` into a new file `dest` (mode 0600,
// O_EXCL), at most `max_bytes`; fsyncs it. Returns the bytes copied.
absl::StatusOr<int64_t> CopyToNewFile(int fd, const std::string& dest, int64_t max_bytes);

}  // namespace candies::server
