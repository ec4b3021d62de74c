// candies-worker: runs one candiesd job in its own process (server/worker.h,
// server/process_backend.h). Started by the daemon, never by hand: its job
// arrives on stdin as a framed WorkerJob.
#include <memory>
#include <string>
#include <vector>

#include "server/candies_backend.h"
#include "server/worker.h"

int main(int argc, char** argv) {
  return candies::server::RunWorker(
      std::vector<std::string>(argv + 1, argv + argc), [](const std::string& device) {
        return std::make_unique<candies::server::CandiesBackend>(device);
      });
}
