// The few LibTorch calls that differ between the two builds candies supports:
// Debian's LibTorch 1.13 (CPU) and PyPI's LibTorch 2.x (CUDA). Everything else in
// core/ uses APIs that exist in both (e.g. torch::linalg_solve, not the
// torch::linalg:: namespace that 2.x removed). Keep version branches here only.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace candies {
namespace compat {

#if TORCH_VERSION_MAJOR >= 2
inline bool CudaAutocastEnabled() { return at::autocast::is_autocast_enabled(at::kCUDA); }
inline void SetCudaAutocastEnabled(bool on) { at::autocast::set_autocast_enabled(at::kCUDA, on); }
inline at::ScalarType CudaAutocastDtype() { return at::autocast::get_autocast_dtype(at::kCUDA); }
inline void SetCudaAutocastDtype(at::ScalarType t) { at::autocast::set_autocast_dtype(at::kCUDA, t); }
#else
inline bool CudaAutocastEnabled() { return at::autocast::is_enabled(); }
inline void SetCudaAutocastEnabled(bool on) { at::autocast::set_enabled(on); }
inline at::ScalarType CudaAutocastDtype() { return at::autocast::get_autocast_gpu_dtype(); }
inline void SetCudaAutocastDtype(at::ScalarType t) { at::autocast::set_autocast_gpu_dtype(t); }
#endif

}  // namespace compat

// bf16 autocast on CUDA for the lifetime of the scope (a thread-local flag, like
// Python's torch.autocast). Matmuls and linear layers run in bf16; reductions,
// norms and losses stay fp32 under autocast's own op lists. `on` false: no-op, so
// callers pass `bf16 && device.is_cuda()` and keep one code path.
class CudaBf16AutocastScope {
 public:
  explicit CudaBf16AutocastScope(bool on) : on_(on) {
    if (!on_) return;
    prev_enabled_ = compat::CudaAutocastEnabled();
    prev_dtype_ = compat::CudaAutocastDtype();
    compat::SetCudaAutocastDtype(at::kBFloat16);
    compat::SetCudaAutocastEnabled(true);
    at::autocast::increment_nesting();
  }
  ~CudaBf16AutocastScope() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    compat::SetCudaAutocastEnabled(prev_enabled_);
    compat::SetCudaAutocastDtype(prev_dtype_);
  }
  CudaBf16AutocastScope(const CudaBf16AutocastScope&) = delete;
  CudaBf16AutocastScope& operator=(const CudaBf16AutocastScope&) = delete;

 private:
  bool on_;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kBFloat16;
};

}  // namespace candies
