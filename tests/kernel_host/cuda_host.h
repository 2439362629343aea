// The CUDA built-ins runtime/app/images/gpu/kernels.cu uses, for a host (g++) build of that
// file unchanged: a launch runs every thread of the grid one after another on the CPU.
// The kernels use no shared memory, barriers or atomics, so the order cannot matter.
#pragma once
#include <cstddef>
#include <utility>

#define __global__
#define __device__
#define __forceinline__ inline

struct host_dim3 { unsigned x = 1, y = 1, z = 1; };
static host_dim3 gridDim, blockDim, blockIdx, threadIdx;

static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
// Round-to-nearest single-precision operations, never fused (build with -ffp-contract=off).
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }

// launch(kernel, grid, block, params): what cuLaunchKernel does with kernelParams (one
// pointer per argument, to a value of that argument's type).
template <typename... A, std::size_t... I>
static void host_call(void (*kernel)(A...), void** params, std::index_sequence<I...>) {
    kernel(*static_cast<A*>(params[I])...);
}

template <typename... A>
static void host_launch(void (*kernel)(A...), const unsigned* grid, const unsigned* block, void** params) {
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block[0], block[1], block[2]};
    for (blockIdx.z = 0; blockIdx.z < grid[2]; ++blockIdx.z)
        for (blockIdx.y = 0; blockIdx.y < grid[1]; ++blockIdx.y)
            for (blockIdx.x = 0; blockIdx.x < grid[0]; ++blockIdx.x)
                for (threadIdx.z = 0; threadIdx.z < block[2]; ++threadIdx.z)
                    for (threadIdx.y = 0; threadIdx.y < block[1]; ++threadIdx.y)
                        for (threadIdx.x = 0; threadIdx.x < block[0]; ++threadIdx.x)
                            host_call(kernel, params, std::index_sequence_for<A...>{});
}

#define HOST_LAUNCHER(name) \
    extern "C" void launch_##name(const unsigned* grid, const unsigned* block, void** params) { \
        host_launch(name, grid, block, params); \
    }
