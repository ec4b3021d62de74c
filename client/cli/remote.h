// `candies run --server ADDR`: the same job as local `candies run`, run by
// candiesd (cmd_remote.cc). Kept free of gRPC and LibTorch types so that
// cmd_run.cc can call it.
#pragma once

#include <memory>
#include <string>

#include "core/io/anndata.h"
#include "core/util/job_options.h"

namespace candies::cli {

// Where and as whom: see cmd_remote.cc's --token, --tls-* flags.
struct RemoteConnection {
  std::string server, owner, token;  // token "": $CANDIES_TOKEN
  std::string tls_ca, tls_cert, tls_key;
};

struct RemoteRun {
  RemoteConnection connection;
  std::shared_ptr<const AnnData> mod1, mod2;
  std::string mod1_name, mod2_name;  // dataset names shown by the server
  // Parsed and validated as a local run parses them (core/util/job_options.h).
  JobSettings settings;
  std::string labels_key;
  uint64_t seed = 0;
  std::string load_model;  // a server model id to apply
  bool save_model = false;  // keep the trained model on the server (prints its id)
  std::string out, out_denoised;
};

// Uploads both modalities, submits, follows progress on stderr, fetches the
// result to `out` (and the denoised matrix to `out_denoised`), and prints what
// local `candies run` prints. Returns the process exit code.
int RunOnServer(const RemoteRun& run);

}  // namespace candies::cli
