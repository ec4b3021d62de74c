// Host-device round trips in the denoiser's training loop. On a GPU every
// .item() (aten::_local_scalar_dense) waits for the device, so the loop reads
// one scalar per epoch (the epoch loss), never one per minibatch. Counted with a
// RecordFunction observer, which sees the same ops on the CPU as on CUDA.
#include <atomic>
#include <cstring>

#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include "core/models/diffusion.h"
#include "core/models/diffusion_internal.h"

namespace candies {
namespace {

std::atomic<int64_t> g_scalar_reads{0};

std::unique_ptr<at::ObserverContext> CountScalarRead(const at::RecordFunction& fn) {
  if (std::strcmp(fn.name(), "aten::_local_scalar_dense") == 0) ++g_scalar_reads;
  return nullptr;
}

// Scalar reads (.item()) made while `f` runs.
template <typename F>
int64_t ScalarReadsDuring(F&& f) {
  g_scalar_reads = 0;
  auto handle = at::addGlobalCallback(at::RecordFunctionCallback(&CountScalarRead));
  f();
  at::removeCallback(handle);
  return g_scalar_reads.load();
}

TEST(HostSyncTest, TrainingReadsOneScalarPerEpochNotPerMinibatch) {
  auto gen = at::detail::createCPUGenerator(3);
  auto high = torch::randn({256, 3}, gen, torch::kFloat32);
  auto low = torch::tanh(high.sum(1, true)).repeat({1, 4}) + 0.3 * torch::randn({256, 4}, gen, torch::kFloat32);
  DiffusionOptions o;
  o.hidden = 16;
  o.depth = 1;
  o.heads = 2;
  o.timesteps = 50;
  o.batch_size = 32;  // 8 minibatches per epoch
  o.patience = 0;
  o.grad_clip = 1.0;  // clipping must not read the norm back either
  auto reads = [&](int64_t epochs) {
    o.max_epochs = epochs;
    return ScalarReadsDuring([&] { ASSERT_TRUE(TrainDenoiser(low, high, o, torch::kCPU).ok()); });
  };
  const int64_t two = reads(2), five = reads(5);
  EXPECT_GT(two, 0) << "the observer saw no .item() at all";
  EXPECT_EQ(five - two, 3) << "scalar reads: " << two << " for 2 epochs, " << five << " for 5";
}

TEST(HostSyncTest, ClipGradNormOnDeviceMatchesLibTorchWithoutAScalarRead) {
  for (double max_norm : {0.05, 1e6}) {  // clipped, and left alone
    torch::manual_seed(5);
    auto make = [] {
      torch::nn::Linear net(6, 3);
      net->weight.data().copy_(torch::arange(18, torch::kFloat32).reshape({3, 6}) / 10);
      net->bias.data().fill_(0.5);
      (net->forward(torch::ones({4, 6})).pow(2).sum()).backward();
      return net;
    };
    auto ours = make(), theirs = make();
    const int64_t n = ScalarReadsDuring([&] { diffusion_internal::ClipGradNormOnDevice(ours->parameters(), max_norm); });
    const int64_t libtorch_reads =
        ScalarReadsDuring([&] { torch::nn::utils::clip_grad_norm_(theirs->parameters(), max_norm); });
    EXPECT_EQ(n, 0);
    EXPECT_EQ(libtorch_reads, 1);  // what the observer catches: LibTorch's version returns the norm
    EXPECT_TRUE(torch::equal(ours->weight.grad(), theirs->weight.grad())) << max_norm;
    EXPECT_TRUE(torch::equal(ours->bias.grad(), theirs->bias.grad())) << max_norm;
    const double norm = torch::stack({ours->weight.grad().norm(), ours->bias.grad().norm()}).norm().item<double>();
    if (max_norm < 1) EXPECT_NEAR(norm, max_norm, 1e-4);  // it was clipped
    else EXPECT_GT(norm, 1.0);                             // nothing to clip
  }
}

}  // namespace
}  // namespace candies
