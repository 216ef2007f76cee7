// The CUDA plugin seen from a machine without a GPU (CI's): the program links no CUDA library,
// counts devices through the driver alone, loads libowt_cuda.so when a CUDA backend is asked
// for, and the plugin's errors (owt::Error thrown inside it) reach the program's handlers.
// The gpu tests cover the same calls with a device.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <string>

#include "owt/backend/cuda.h"
#include "owt/comm/nccl_communicator.h"
#include "owt/core/error.h"

namespace owt::test {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no owt::Error)";
}

TEST(CudaPlugin, TheOwtBinaryLinksNoCudaLibrary) {
  FILE* p = popen("ldd " OWT_BINARY " 2>&1", "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  ASSERT_NE(out.find("libc.so"), std::string::npos) << out;
  for (const char* lib : {"libcudart", "libcublas", "libcudnn", "libnccl", "libcuda.so"})
    EXPECT_EQ(out.find(lib), std::string::npos) << OWT_BINARY " links " << lib << ":\n" << out;
}

TEST(CudaPlugin, CountsDevicesAndSaysWhyThereAreNone) {
  EXPECT_TRUE(cuda_backend_built());
  if (cuda_device_count() == 0)
    EXPECT_FALSE(cuda_unavailable_reason().empty());
  else
    EXPECT_EQ(cuda_unavailable_reason(), "");
}

TEST(CudaPlugin, LoadsAndItsErrorsReachTheProgram) {
  EXPECT_NE(error_of([] { make_cuda_backend(0, "fp16"); }).find("precision 'fp16'"),
            std::string::npos)
      << error_of([] { make_cuda_backend(0, "fp16"); });
  const int count = cuda_device_count();
  EXPECT_NE(error_of([&] { make_cuda_backend(count, "tf32"); }).find("requested but"),
            std::string::npos)
      << error_of([&] { make_cuda_backend(count, "tf32"); });
}

TEST(CudaPlugin, RefusesBackendsThatAreNotCuda) {
  auto cpu = make_cpu_backend();
  EXPECT_NE(error_of([&] { cuda_stream_of(*cpu); }).find("not a CUDA backend"), std::string::npos);
  EXPECT_NE(error_of([&] { cuda_memory_stats(*cpu); }).find("not a CUDA backend"),
            std::string::npos);
  float x = 0;
  EXPECT_NE(error_of([&] { cuda_written_outside(*cpu, &x, sizeof x); }).find("not a CUDA backend"),
            std::string::npos);
  // Through the plugin's NCCL entry point: the communicator refuses a CPU backend.
  auto world = make_local_communicator();
  const std::string e = error_of([&] { make_nccl_communicator(*world, *cpu); });
  EXPECT_NE(e.find("not a CUDA backend"), std::string::npos) << e;
}

}  // namespace
}  // namespace owt::test
