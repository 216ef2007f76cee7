// OWT_HOST_DEVICE marks maths written once for both backends: compiled for the host by the
// C++ compiler and for the device by nvcc. In core because core/philox.h uses it (core depends
// on nothing); the only #if outside backend/cuda and comm/.
#pragma once
#if defined(__CUDACC__)
#define OWT_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define OWT_HOST_DEVICE inline
#endif
