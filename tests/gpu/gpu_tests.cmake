# tests/gpu: owt_gpu_tests, every CUDA backend op and one training step against the CPU
# backend (ctest label gpu). Built only with OWT_WITH_CUDA; each test skips without a device.
if(OWT_WITH_CUDA)
  file(GLOB OWT_GPU_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
  add_executable(owt_gpu_tests ${OWT_GPU_TESTS})
  target_link_libraries(owt_gpu_tests PRIVATE owt_test_support GTest::gtest_main)
  gtest_discover_tests(owt_gpu_tests PROPERTIES LABELS gpu DISCOVERY_TIMEOUT 60)
endif()
