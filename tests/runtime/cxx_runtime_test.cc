// The C++ runtime a torch-linked binary binds to. PyPI's LibTorch 2.x exports its
// own static copies of libstdc++ pieces (std::filesystem among them); binaries must
// still resolve them to the system libstdc++ (see the link options in the top
// CMakeLists.txt). Bound to LibTorch's copy, std::filesystem::remove_all crashed.
#include <dlfcn.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace candies {
namespace {

// The shared object that a global lookup of `symbol` finds first: the one this
// executable's own references bind to.
std::string ProviderOf(const char* symbol) {
  void* address = dlsym(RTLD_DEFAULT, symbol);
  if (address == nullptr) return "(not found)";
  Dl_info info{};
  if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) return "(no object)";
  return info.dli_fname;
}

TEST(CxxRuntime, StdFilesystemResolvesToTheSystemLibstdcxx) {
  for (const char* symbol : {"_ZNSt10filesystem10remove_allERKNS_7__cxx114pathE",
                             "_ZNSt10filesystem18create_directoriesERKNS_7__cxx114pathE"}) {
    EXPECT_NE(ProviderOf(symbol).find("libstdc++"), std::string::npos) << symbol << " from " << ProviderOf(symbol);
  }
}

TEST(CxxRuntime, RemoveAllDeletesANestedTree) {
  const auto dir = std::filesystem::temp_directory_path() / "candies_cxx_runtime_remove_all";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "a" / "b");
  { std::ofstream(dir / "a" / "b" / "f.txt") << "x"; }
  EXPECT_EQ(std::filesystem::remove_all(dir), 4u);  // dir, a, b, f.txt
  EXPECT_FALSE(std::filesystem::exists(dir));
}

}  // namespace
}  // namespace candies
