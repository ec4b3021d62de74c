// The path of a program installed beside the running one: candiesd finds
// candies-worker and candies-validate in its own folder, tests find the
// binaries built beside them.
#pragma once

#include <string>

namespace candies {

// `name` in the folder of this process's executable (/proc/self/exe); `name`
// alone (looked up on PATH by exec) when that link cannot be read.
std::string SiblingExecutable(const std::string& name);

}  // namespace candies
