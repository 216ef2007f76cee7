# The CUDA backend (src/backend/cuda) and the NCCL communicator (src/comm/nccl), built as the
# plugin libowt_cuda.so next to the owt binary (target owt_cuda), for Hopper (sm_90 SASS plus
# compute_90 PTX for newer GPUs). owt_lib does not link it: src/backend/cuda_loader.cpp opens
# it with dlopen the first time a CUDA backend is asked for, so a run that never uses a GPU
# maps none of cudart, cuBLAS, cuDNN and NCCL. Included by the top-level CMakeLists.txt after
# enable_language(CUDA) when OWT_WITH_CUDA is ON.
find_package(CUDAToolkit REQUIRED)

set(_owt_cuda_hints ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib64
    /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/lib/x86_64-linux-gnu /usr/local/lib)
set(_owt_cuda_include_hints ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include /usr/include
    /usr/local/include)
find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${_owt_cuda_include_hints})
find_library(CUDNN_LIBRARY cudnn HINTS ${_owt_cuda_hints})
if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
  message(FATAL_ERROR "OWT_WITH_CUDA: cuDNN not found (cudnn.h: ${CUDNN_INCLUDE_DIR}, "
                      "libcudnn: ${CUDNN_LIBRARY}); install cuDNN 9 or set -DOWT_WITH_CUDA=OFF")
endif()
# NCCL needs no MPI: one worker's communicator is made over the local one (K = 1).
find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${_owt_cuda_include_hints})
find_library(NCCL_LIBRARY nccl HINTS ${_owt_cuda_hints})
if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY)
  message(FATAL_ERROR "OWT_WITH_CUDA: NCCL not found (nccl.h: ${NCCL_INCLUDE_DIR}, "
                      "libnccl: ${NCCL_LIBRARY}); install NCCL 2 or set -DOWT_WITH_CUDA=OFF")
endif()

# The plugin and the program check that they come from the same build tree.
string(SHA1 _owt_cuda_build_id "${PROJECT_BINARY_DIR} ${PROJECT_VERSION}")
string(SUBSTRING "${_owt_cuda_build_id}" 0 12 _owt_cuda_build_id)

file(GLOB OWT_CUDA_PLUGIN_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/backend/cuda/*.cu
     ${PROJECT_SOURCE_DIR}/src/backend/cuda/*.cpp ${PROJECT_SOURCE_DIR}/src/comm/nccl/*.cpp)
add_library(owt_cuda SHARED ${OWT_CUDA_PLUGIN_SOURCES})
# The plugin uses owt's headers only (inline code: Tensor, Error, the elementwise maths); it
# links no part of owt_lib, so nothing of owt exists twice in a process.
target_include_directories(owt_cuda PRIVATE ${PROJECT_SOURCE_DIR}/include ${CUDNN_INCLUDE_DIR}
                           ${NCCL_INCLUDE_DIR})
target_link_libraries(owt_cuda PRIVATE CUDA::cudart CUDA::cublas ${CUDNN_LIBRARY} ${NCCL_LIBRARY}
                      OpenMP::OpenMP_CXX)
target_compile_definitions(owt_cuda PRIVATE OWT_CUDA_BUILD_ID="${_owt_cuda_build_id}"
                           OWT_VERSION="${PROJECT_VERSION}")
if(OWT_NATIVE)
  target_compile_options(owt_cuda PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
endif()
# nvcc gets its own flags (and -Xcompiler=-Wall from owt_target_warnings).
target_compile_options(owt_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
owt_target_warnings(owt_cuda)
# Everything hidden but the entry points (owt_cuda_plugin_api, owt_nccl_communicator_new); every
# symbol resolved at link time; beside the owt binary, where the loader looks first.
set_target_properties(owt_cuda PROPERTIES
                      CUDA_ARCHITECTURES "90-real;90-virtual" CUDA_STANDARD 17
                      CUDA_STANDARD_REQUIRED ON CXX_VISIBILITY_PRESET hidden
                      CUDA_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
                      LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR})
target_link_options(owt_cuda PRIVATE LINKER:--no-undefined LINKER:--exclude-libs,ALL)

# The loader, in owt_lib: needs dlopen and the plugin's identity and build-tree path.
set(_owt_cuda_loader ${PROJECT_SOURCE_DIR}/src/backend/cuda_loader.cpp)
target_sources(owt_lib PRIVATE ${_owt_cuda_loader})
set_property(SOURCE ${_owt_cuda_loader} APPEND PROPERTY COMPILE_DEFINITIONS
             OWT_CUDA_BUILD_ID="${_owt_cuda_build_id}"
             OWT_CUDA_PLUGIN_BUILD_PATH="$<TARGET_FILE:owt_cuda>")
target_link_libraries(owt_lib PUBLIC ${CMAKE_DL_LIBS})
