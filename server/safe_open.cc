#include "server/safe_open.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace candies::server {

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) close(fd_);
}

namespace {

std::vector<std::string> Components(const std::string& path) {
  return absl::StrSplit(path, '/', absl::SkipEmpty());
}

// The components of `path` below `root`, or false when it is not under it.
bool RelativeTo(const std::vector<std::string>& path, const std::vector<std::string>& root,
                std::vector<std::string>* rest) {
  if (path.size() <= root.size()) return false;
  for (size_t i = 0; i < root.size(); ++i) {
    if (path[i] != root[i]) return false;
  }
  rest->assign(path.begin() + static_cast<long>(root.size()), path.end());
  return true;
}

}  // namespace

absl::StatusOr<FileDescriptor> OpenBeneath(const std::string& path,
                                           const std::vector<std::string>& roots) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("path: ", path, ": must be absolute"));
  }
  const std::vector<std::string> parts = Components(path);
  for (const std::string& c : parts) {
    if (c == "..") {
      return absl::PermissionDeniedError(absl::StrCat("path: ", path, ": '..' is not allowed"));
    }
  }
  std::vector<std::string> clean;
  for (const std::string& c : parts) {
    if (c != ".") clean.push_back(c);
  }
  for (const std::string& root : roots) {
    char* real = realpath(root.c_str(), nullptr);
    if (real == nullptr) continue;
    const std::string real_root(real);
    free(real);
    std::vector<std::string> rest;
    // Accept the path spelled with the configured root or with its real path.
    if (!RelativeTo(clean, Components(real_root), &rest) &&
        !RelativeTo(clean, Components(root), &rest)) {
      continue;
    }
    FileDescriptor dir(open(real_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) continue;
    for (size_t i = 0; i < rest.size(); ++i) {
      const bool last = i + 1 == rest.size();
      const int flags = last ? (O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
                             : (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      FileDescriptor next(openat(dir.get(), rest[i].c_str(), flags));
      if (next.get() < 0) {
        const int e = errno;
        if (e == ELOOP || e == ENOTDIR) {
          return absl::PermissionDeniedError(absl::StrCat(
              "path: ", path, ": a component is a symlink or not a directory "
              "(symlinks are not followed under allowed dirs)"));
        }
        return absl::NotFoundError(absl::StrCat("path: ", path, ": ", std::strerror(e)));
      }
      dir = std::move(next);
    }
    struct stat st;
    if (fstat(dir.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat("path: ", path, ": not a regular file"));
    }
    // Reads block again (O_NONBLOCK only kept a FIFO from hanging the open).
    fcntl(dir.get(), F_SETFL, fcntl(dir.get(), F_GETFL) & ~O_NONBLOCK);
    return dir;
  }
  return absl::PermissionDeniedError(
      absl::StrCat("path: ", path, " is not under an allowed dir (--allowed-dir)"));
}

absl::StatusOr<int64_t> CopyToNewFile(int fd, const std::string& dest, int64_t max_bytes) {
  FileDescriptor out(open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (out.get() < 0) {
    return absl::InternalError(absl::StrCat(dest, ": cannot create: ", std::strerror(errno)));
  }
  if (lseek(fd, 0, SEEK_SET) != 0) {
    return absl::InternalError(absl::StrCat(dest, ": cannot rewind the source"));
  }
  int64_t total = 0;
  char buf[1 << 16];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat("read: ", std::strerror(errno)));
    if (n == 0) break;
    total += n;
    if (total > max_bytes) {
      unlink(dest.c_str());
      return absl::ResourceExhaustedError(
          absl::StrCat("file is larger than ", max_bytes, " bytes"));
    }
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(out.get(), buf + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        unlink(dest.c_str());
        return absl::InternalError(absl::StrCat(dest, ": write: ", std::strerror(errno)));
      }
      done += w;
    }
  }
  if (fsync(out.get()) != 0) {
    unlink(dest.c_str());
    return absl::InternalError(absl::StrCat(dest, ": fsync: ", std::strerror(errno)));
  }
  return total;
}

}  // namespace candies::server
