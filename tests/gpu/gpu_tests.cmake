# tests/gpu, built only with OWT_WITH_CUDA:
#   owt_gpu_tests (ctest label gpu): every CUDA backend op and training steps against the CPU
#     backend, the K = 1 NCCL communicator, AlexNet's loss. Each test skips without a device,
#     and fails instead under OWT_REQUIRE_GPU=1 (tools/gpu_check.sh sets it).
#   owt_gpu_host_tests (label unit, no device needed): the CUDA plugin loads and its errors
#     reach the program; the train-step bounds pass CPU emulations of each precision.
# Both reach the backend through owt_lib's loader, which finds libowt_cuda.so in the build
# tree (or next to the binary, in the GPU bundle).
if(OWT_WITH_CUDA)
  file(GLOB OWT_GPU_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
  add_executable(owt_gpu_tests ${OWT_GPU_TESTS})
  target_link_libraries(owt_gpu_tests PRIVATE owt_test_support GTest::gtest_main)
  target_compile_definitions(owt_gpu_tests PRIVATE OWT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  owt_target_warnings(owt_gpu_tests)
  add_dependencies(owt_gpu_tests owt_cuda)
  gtest_discover_tests(owt_gpu_tests PROPERTIES LABELS gpu DISCOVERY_TIMEOUT 60)

  file(GLOB OWT_GPU_HOST_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/host/*.cpp)
  add_executable(owt_gpu_host_tests ${OWT_GPU_HOST_TESTS})
  target_include_directories(owt_gpu_host_tests PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(owt_gpu_host_tests PRIVATE owt_test_support GTest::gtest_main)
  target_compile_definitions(owt_gpu_host_tests PRIVATE OWT_BINARY="$<TARGET_FILE:owt>")
  owt_target_warnings(owt_gpu_host_tests)
  add_dependencies(owt_gpu_host_tests owt_cuda owt)
  gtest_discover_tests(owt_gpu_host_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
endif()
