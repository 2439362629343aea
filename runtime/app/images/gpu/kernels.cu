// The Pillow-exact resize passes and to_tensor's normalisation, compiled at run time by
// NVRTC (through CuPy) with --fmad=false. The same file is built for the host by the
// tests (tests/kernel_host: a header maps the CUDA built-ins, g++ compiles it), and by
// NVRTC for every architecture the project claims: keep it plain CUDA C++, one thread per
// output value, no shared memory, warp intrinsics or atomics.
// table: per image, 4 x int64: source address, source stride along the taps, source
// stride along the other axis, destination address.
extern "C" __global__ void resample_pass(
    const long long* table, int n_in, int other0, int n_other,
    const int* start, const int* weights, int ksize, int n_out, long long dst_tap, long long dst_other)
{
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)n_out * n_other * 3) return;
    const long long* row = table + 4LL * blockIdx.y;
    const unsigned char* src = (const unsigned char*)row[0];
    long long src_tap = row[1], src_other = row[2];
    unsigned char* dst = (unsigned char*)row[3];
    int c = (int)(i % 3);
    int o = (int)((i / 3) % n_other);
    int t = (int)(i / (3LL * n_other));
    const unsigned char* line = src + (long long)(o + other0) * src_other + c;
    const int* w = weights + (long long)t * ksize;
    int s = start[t];
    int acc = 1 << 21;
    for (int k = 0; k < ksize; ++k) {
        int x = min(s + k, n_in - 1);
        acc += (int)line[(long long)x * src_tap] * w[k];
    }
    int v = acc >> 22;
    dst[(long long)t * dst_tap + (long long)o * dst_other + c] = (unsigned char)(v < 0 ? 0 : (v > 255 ? 255 : v));
}

extern "C" __global__ void normalise(
    const unsigned char* src, float* dst, int n, int hw, float scale,
    float m0, float m1, float m2, float s0, float s1, float s2)
{
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)n * hw * 3) return;
    int c = (int)(i % 3);
    long long p = (i / 3) % hw;
    long long b = i / (3LL * hw);
    float m = c == 0 ? m0 : (c == 1 ? m1 : m2);
    float s = c == 0 ? s0 : (c == 1 ? s1 : s2);
    float x = __fmul_rn((float)src[i], scale);
    dst[(b * 3 + c) * hw + p] = __fdiv_rn(__fsub_rn(x, m), s);
}
