// Writes seed inputs: fuzz_seeds UPLOAD_DIR CONFIG_DIR. Upload seeds are valid
// dense and CSR streams in fuzz_upload's framing; config seeds are a few
// valid configs (deploy/candiesd.conf is added by run.sh).
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "candies/v1/candies.pb.h"

namespace {

void Frame(const candies::v1::UploadChunk& c, std::string* out) {
  const std::string s = c.SerializeAsString();
  out->push_back(static_cast<char>(s.size() & 0xff));
  out->push_back(static_cast<char>(s.size() >> 8));
  out->append(s);
}

candies::v1::UploadChunk Header(int n_obs, int n_vars, bool names) {
  candies::v1::UploadChunk c;
  auto* h = c.mutable_header();
  h->set_name("rna");
  h->set_n_obs(n_obs);
  h->set_n_vars(n_vars);
  for (int i = 0; i < 2 * n_obs; ++i) h->add_spatial(static_cast<float>(i));
  if (names) {
    for (int i = 0; i < n_obs; ++i) h->add_obs_names("s" + std::to_string(i));
    for (int j = 0; j < n_vars; ++j) h->add_var_names("g" + std::to_string(j));
    auto* col = h->add_obs_columns();
    col->set_name("cluster");
    for (int i = 0; i < n_obs; ++i) col->add_values(i % 2 ? "a" : "b");
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string up = argv[1], conf = argv[2];
  std::string dense, csr;
  Frame(Header(4, 3, true), &dense);
  candies::v1::UploadChunk rows;
  for (int i = 0; i < 12; ++i) rows.mutable_rows()->add_values(static_cast<float>(i % 3));
  Frame(rows, &dense);
  Frame(Header(3, 4, false), &csr);
  candies::v1::UploadChunk b;
  for (int64_t p : {0, 2, 2, 3}) b.mutable_csr()->add_indptr(p);
  for (int j : {0, 3, 1}) {
    b.mutable_csr()->add_indices(j);
    b.mutable_csr()->add_values(1.5f);
  }
  Frame(b, &csr);
  candies::v1::UploadChunk sum;
  sum.set_checksum_fnv1a64(12345);
  Frame(sum, &csr);
  std::ofstream(up + "/dense.bin", std::ios::binary) << dense;
  std::ofstream(up + "/csr.bin", std::ios::binary) << csr;
  std::ofstream(conf + "/small.conf") << "listen = 127.0.0.1:0\nworkers = 2\nmax-attempts = 3\n"
                                         "allowed-dir = /srv/a\nread-max-elements = 1000\n";
  std::string flags;
  for (const char* a : {"--workers", "4", "--max-queue=9", "--max-attempts", "3"}) {
    flags += a;
    flags.push_back('\0');
  }
  std::ofstream(conf + "/flags.bin", std::ios::binary) << flags;
  return 0;
}
