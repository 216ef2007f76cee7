// The contract between owt and its CUDA plugin, libowt_cuda.so (src/backend/cuda and
// src/comm/nccl, built by cmake/cuda.cmake): the one C entry point the plugin exports and the
// table of functions it returns. cuda_loader.cpp finds it with dlopen/dlsym; no CUDA types here.
#pragma once
#include <memory>
#include <string>

#include "owt/backend/backend.h"
#include "owt/backend/cuda.h"

namespace owt {

// Bumped whenever the table below changes.
constexpr int kCudaPluginAbi = 2;

// The plugin's implementations of owt/backend/cuda.h. C++ types cross the boundary: the plugin
// and the program come from one build (build_id, checked by the loader), and owt::Error thrown
// inside the plugin reaches the program's handlers like any other exception.
struct CudaPluginApi {
  int abi;               // kCudaPluginAbi of the plugin's build
  const char* build_id;  // OWT_CUDA_BUILD_ID of the plugin's build
  std::unique_ptr<Backend> (*make_backend)(int device, const std::string& precision);
  void* (*stream_of)(Backend& backend);
  int (*device_of)(Backend& backend);
  void (*written_outside)(Backend& backend, const void* p, size_t bytes);
  CudaMemoryStats (*memory_stats)(Backend& backend);
  void (*reset_peak_memory)(Backend& backend);
};

}  // namespace owt

// Everything else in the plugin has hidden visibility: only the entry points are exported.
#define OWT_CUDA_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))
#define OWT_CUDA_PLUGIN_FILE "libowt_cuda.so"
#define OWT_CUDA_PLUGIN_ENTRY "owt_cuda_plugin_api"
OWT_CUDA_PLUGIN_EXPORT const owt::CudaPluginApi* owt_cuda_plugin_api();
