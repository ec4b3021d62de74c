#include "core/util/sibling_executable.h"

#include <unistd.h>

#include <climits>

namespace candies {

std::string SiblingExecutable(const std::string& name) {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return name;
  const std::string self(buf, static_cast<size_t>(n));
  return self.substr(0, self.rfind('/') + 1) + name;
}

}  // namespace candies
