// CPU thread settings for a job: how many cores this process may use, and how
// they are split between OpenBLAS (matrix products) and LibTorch's OpenMP
// intra-op pool (element-wise ops), so that the two pools never oversubscribe.
//
// Why the split (measured, docs/PERFORMANCE.md): Debian's LibTorch calls the
// pthread OpenBLAS for every GEMM, which brings its own thread pool sized to the
// cores; LibTorch's OpenMP pool is a second one. With libgomp's default *active*
// wait, each OpenMP thread spins after every parallel region, and the denoiser
// runs thousands of tiny regions (128 x 512 tensors) per epoch, so two OpenMP
// threads cost 4x the CPU time of one and made a run 2.6x slower. The GEMMs,
// where the arithmetic is, use all cores through OpenBLAS; the OpenMP pool gets
// the cores too only when OMP_WAIT_POLICY=passive was set before the process
// started (libgomp reads it once at load), and otherwise stays at one thread.
// Without OpenBLAS (the CUDA build's LibTorch wheel, whose MKL runs inside the
// OpenMP pool) the OpenMP pool takes the budget, as LibTorch does by default.
//
// OpenBLAS kernels: Debian's OpenBLAS 0.3.21 picks its kernels from the CPU
// model and falls back to "Prescott" (SSE3) on models it does not know, e.g.
// Emerald Rapids (family 6 model 207) under a VM: 45% of a fast-preset run was
// then sgemm_kernel_PRESCOTT. When OPENBLAS_CORETYPE is unset and OpenBLAS chose
// Prescott on a CPU with AVX-512 (SkylakeX kernels) or AVX2+FMA (Haswell), the
// first ConfigureThreads re-runs OpenBLAS's own core selection with that core
// type (its exported gotoblas_dynamic_quit/init, as OPENBLAS_CORETYPE would at
// load). Setting OPENBLAS_CORETYPE yourself always wins.
#pragma once

#include <string>

namespace candies {

struct ThreadSettings {
  int cores = 1;           // cores this process may use (affinity, cgroup quota)
  int requested = 0;       // what the caller asked for (0: all `cores`)
  int blas = 1;            // OpenBLAS threads (-1: the BLAS in use is not OpenBLAS)
  int intra_op = 1;        // LibTorch intra-op (OpenMP) threads
  int interop = 1;         // LibTorch inter-op threads (unused by candies)
  bool omp_passive = false;  // OMP_WAIT_POLICY=passive in the environment
  std::string blas_core;     // OpenBLAS kernel set ("SkylakeX"); "" when not OpenBLAS
  std::string blas_core_was; // the kernel set OpenBLAS chose at load, when candies replaced it
};

// The cores this process may run on: the CPUs in its affinity mask, capped by a
// cgroup v2 (cpu.max) or v1 (cpu.cfs_quota_us) CPU quota, rounded up; >= 1.
int AvailableCores();

// Applies a thread budget: `threads` > 0 caps it, 0 means AvailableCores().
// OpenBLAS gets the budget; LibTorch's intra-op pool gets it only under
// OMP_WAIT_POLICY=passive (see above), else 1. Process-wide; returns what is in
// force afterwards.
ThreadSettings ConfigureThreads(int threads);

// What is in force now, without changing it.
ThreadSettings CurrentThreadSettings();

// One line for logs and benchmark headers, e.g.
// "threads: cores 2, requested auto, OpenBLAS 2 (SkylakeX kernels, was Prescott),
//  torch intra-op 1, inter-op 1, OMP_WAIT_POLICY unset".
std::string DescribeThreads(const ThreadSettings& s);

}  // namespace candies
