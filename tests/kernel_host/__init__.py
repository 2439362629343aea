"""The CUDA kernels built for the host: runtime/app/images/gpu/kernels.cu compiled unchanged by
g++ behind cuda_host.h, and a numpy stand-in for the part of CuPy the GPU path uses, so
DeviceResizer's (and DevicePipeline's) own host code launches them on the CPU."""
