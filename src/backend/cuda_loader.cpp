// The CUDA entry points of owt/backend/cuda.h in a build with the CUDA backend. The backend and
// the NCCL communicator live in the plugin libowt_cuda.so (cuda_plugin.h), which this file
// loads with dlopen the first time a CUDA backend is asked for: a run that never uses a GPU maps
// none of cudart, cuBLAS, cuDNN and NCCL. Devices are counted through the driver (libcuda.so.1,
// dlopen'd too), so `--device auto` on a machine without a GPU loads no CUDA library at all.
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_plugin.h"
#include "owt/backend/cuda.h"
#include "owt/core/error.h"

// OWT_CUDA_BUILD_ID (this build's identity, shared with the plugin) and
// OWT_CUDA_PLUGIN_BUILD_PATH (where this build tree puts the plugin) come from cmake/cuda.cmake.

namespace owt {

namespace {

// ---- the driver: device count without the runtime -------------------------------------------

struct Driver {
  int count = 0;
  std::string reason;  // why count is 0
};

// CUresult is an enum (int); 0 is CUDA_SUCCESS.
using CuInit = int (*)(unsigned);
using CuDeviceGetCount = int (*)(int*);
using CuGetErrorString = int (*)(int, const char**);

std::string describe(int rc, CuGetErrorString error_string) {
  const char* text = nullptr;
  if (error_string && error_string(rc, &text) == 0 && text) return cat(text, " (error ", rc, ")");
  return cat("error ", rc);
}

Driver probe_driver() {
  Driver d;
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    d.reason = cat("no CUDA driver (", why ? why : "libcuda.so.1 not found", ")");
    return d;
  }
  // Kept open: the plugin's runtime opens the same driver library later, and a library that
  // has run cuInit is not safe to unload.
  auto cu_init = reinterpret_cast<CuInit>(dlsym(lib, "cuInit"));
  auto cu_count = reinterpret_cast<CuDeviceGetCount>(dlsym(lib, "cuDeviceGetCount"));
  auto cu_error = reinterpret_cast<CuGetErrorString>(dlsym(lib, "cuGetErrorString"));
  if (!cu_init || !cu_count) {
    d.reason = "libcuda.so.1 lacks cuInit or cuDeviceGetCount";
    return d;
  }
  if (int rc = cu_init(0)) {
    d.reason = cat("cuInit failed: ", describe(rc, cu_error));
    return d;
  }
  int n = 0;
  if (int rc = cu_count(&n)) {
    d.reason = cat("cuDeviceGetCount failed: ", describe(rc, cu_error));
    return d;
  }
  d.count = n;
  if (n == 0) d.reason = "the CUDA driver reports no device (CUDA_VISIBLE_DEVICES?)";
  return d;
}

const Driver& driver() {
  static const Driver d = probe_driver();  // once: devices do not come and go within a run
  return d;
}

// ---- the plugin -------------------------------------------------------------------------------

struct Plugin {
  void* handle = nullptr;
  const CudaPluginApi* api = nullptr;
  std::string error;  // why api is null
};

bool is_file(const std::string& path) {
  struct stat st {};
  return !path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The folder of the running program ("" when /proc is not there).
std::string program_dir() {
  std::vector<char> buf(4096);
  ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return "";
  std::string path(buf.data(), static_cast<size_t>(n));
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

// Where the plugin may be, in order: $OWT_CUDA_PLUGIN alone when it is set; else next to the
// program (owt, the bundle's bin/), then where this build tree put it (tests, tools).
std::vector<std::string> candidates() {
  if (const char* env = std::getenv("OWT_CUDA_PLUGIN"); env && *env) return {env};
  std::vector<std::string> out;
  const std::string dir = program_dir();
  if (!dir.empty()) out.push_back(dir + "/" OWT_CUDA_PLUGIN_FILE);
  const std::string built = OWT_CUDA_PLUGIN_BUILD_PATH;
  if (!built.empty() && (out.empty() || out[0] != built)) out.push_back(built);
  return out;
}

Plugin load_plugin() {
  Plugin p;
  std::string looked;
  for (const std::string& path : candidates()) {
    if (!is_file(path)) {
      looked += (looked.empty() ? "" : ", ") + path;
      continue;
    }
    p.handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!p.handle) {
      const char* why = dlerror();
      p.error = cat("cannot load the CUDA backend ", path, ": ", why ? why : "dlopen failed",
                    " (cuDNN, cuBLAS, the CUDA runtime and NCCL must be on the library path)");
      return p;
    }
    auto entry = reinterpret_cast<const CudaPluginApi* (*)()>(dlsym(p.handle, OWT_CUDA_PLUGIN_ENTRY));
    const CudaPluginApi* api = entry ? entry() : nullptr;
    if (!api) {
      p.error = cat(path, " is not owt's CUDA plugin (no ", OWT_CUDA_PLUGIN_ENTRY, ")");
    } else if (api->abi != kCudaPluginAbi || std::strcmp(api->build_id, OWT_CUDA_BUILD_ID) != 0) {
      p.error = cat(path, " comes from another build of owt (plugin ", api->build_id, ", ABI ",
                    api->abi, "; this program ", OWT_CUDA_BUILD_ID, ", ABI ", kCudaPluginAbi,
                    "); rebuild both, or point OWT_CUDA_PLUGIN at the right one");
    } else {
      p.api = api;
    }
    return p;
  }
  p.error = cat("the CUDA backend " OWT_CUDA_PLUGIN_FILE " was not found (looked for ",
                looked.empty() ? std::string("nothing") : looked,
                "); it is built next to the owt binary (CMake target owt_cuda), or set "
                "OWT_CUDA_PLUGIN to its path");
  return p;
}

const Plugin& plugin() {
  static const Plugin p = load_plugin();
  return p;
}

const CudaPluginApi& api() {
  const Plugin& p = plugin();
  if (!p.api) throw Error(p.error);
  return *p.api;
}

// A CUDA backend exists only if the plugin made it; anything else is refused before loading.
Backend& cuda_only(Backend& backend, const char* what) {
  if (backend.device() != Device::CUDA)
    throw Error(cat(what, ": backend '", backend.name(), "' is not a CUDA backend"));
  return backend;
}

}  // namespace

bool cuda_backend_built() { return true; }

int cuda_device_count() { return driver().count; }

std::string cuda_unavailable_reason() { return driver().reason; }

std::unique_ptr<Backend> make_cuda_backend(int device, const std::string& precision) {
  return api().make_backend(device, precision);
}

void* cuda_plugin_symbol(const char* name) {
  api();  // loaded and checked, or throws why not
  void* sym = dlsym(plugin().handle, name);
  if (!sym) throw Error(cat("the CUDA plugin has no symbol ", name));
  return sym;
}

void* cuda_stream_of(Backend& backend) {
  return api().stream_of(cuda_only(backend, "cuda_stream_of"));
}

int cuda_device_of(Backend& backend) {
  return api().device_of(cuda_only(backend, "cuda_device_of"));
}

void cuda_written_outside(Backend& backend, const void* p, size_t bytes) {
  api().written_outside(cuda_only(backend, "cuda_written_outside"), p, bytes);
}

CudaMemoryStats cuda_memory_stats(Backend& backend) {
  return api().memory_stats(cuda_only(backend, "cuda_memory_stats"));
}

void cuda_reset_peak_memory(Backend& backend) {
  api().reset_peak_memory(cuda_only(backend, "cuda_reset_peak_memory"));
}

}  // namespace owt
