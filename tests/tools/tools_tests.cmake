# Tests of what people use around a run (label tools): the TensorBoard event file read back by
# TensorBoard's own EventAccumulator, tools/plot.py, the ONNX export run by ONNX Runtime, and
# tools/gpu_check.sh without a GPU (no bundle; a dry run over a stand-in bundle).
# They use the project's .venv (tools/venv.sh, made by tools/install_deps.sh: tensorboard, onnx,
# onnxruntime from PyPI over Debian's python3-torch and numpy) and Debian's python3-matplotlib.
file(GLOB OWT_TOOLS_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
add_executable(owt_tools_tests ${OWT_TOOLS_TESTS})
target_link_libraries(owt_tools_tests PRIVATE owt_test_support GTest::gtest_main)
owt_target_warnings(owt_tools_tests)
target_compile_definitions(owt_tools_tests PRIVATE OWT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                           OWT_VENV_PYTHON="${PROJECT_SOURCE_DIR}/.venv/bin/python")
add_dependencies(owt_tools_tests owt)
gtest_discover_tests(owt_tools_tests PROPERTIES LABELS tools DISCOVERY_TIMEOUT 60)
