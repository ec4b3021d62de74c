// The worker's side of server/process_backend.h: reads one WorkerJob from
// stdin, runs it with a JobBackend, and reports progress and the outcome on
// stdout (server/worker_protocol.h). Only the report stream uses stdout: the
// process's own stdout is pointed at stderr, so a library that prints cannot
// corrupt it. No LibTorch here: worker_main.cc supplies the backend.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/backend.h"

namespace candies::server {

// Makes the backend for a job's device ("auto" | "cpu" | "cuda[:N]").
using BackendFactory = std::function<std::unique_ptr<JobBackend>(const std::string& device)>;

// `args`: argv[1..]. Returns the process exit code: 0 when an outcome (success
// or the job's error) was reported, 2 for a bad command line or job message.
int RunWorker(const std::vector<std::string>& args, const BackendFactory& make_backend);

}  // namespace candies::server
