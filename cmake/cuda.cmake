# The CUDA backend (src/backend/cuda) and, with MPI, the NCCL communicator (src/comm/nccl),
# compiled into owt_lib for Hopper (sm_90 SASS plus compute_90 PTX for newer GPUs). Included
# by the top-level CMakeLists.txt after enable_language(CUDA) when OWT_WITH_CUDA is ON.
find_package(CUDAToolkit REQUIRED)

set(_owt_cuda_hints ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib64
    /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/lib/x86_64-linux-gnu /usr/local/lib)
find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include
          /usr/include /usr/local/include)
find_library(CUDNN_LIBRARY cudnn HINTS ${_owt_cuda_hints})
if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
  message(FATAL_ERROR "OWT_WITH_CUDA: cuDNN not found (cudnn.h: ${CUDNN_INCLUDE_DIR}, "
                      "libcudnn: ${CUDNN_LIBRARY}); install cuDNN 9 or set -DOWT_WITH_CUDA=OFF")
endif()

file(GLOB OWT_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/backend/cuda/*.cu
     ${CMAKE_SOURCE_DIR}/src/backend/cuda/*.cpp)
set(_owt_cuda_defined_sources ${OWT_CUDA_SOURCES})

if(OWT_WITH_MPI)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include
            /usr/include /usr/local/include)
  find_library(NCCL_LIBRARY nccl HINTS ${_owt_cuda_hints})
  if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY)
    message(FATAL_ERROR "OWT_WITH_CUDA with MPI: NCCL not found (nccl.h: ${NCCL_INCLUDE_DIR}, "
                        "libnccl: ${NCCL_LIBRARY}); install NCCL or set -DOWT_WITH_MPI=OFF")
  endif()
  file(GLOB OWT_NCCL_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/comm/nccl/*.cpp)
  list(APPEND _owt_cuda_defined_sources ${OWT_NCCL_SOURCES})
  target_sources(owt_lib PRIVATE ${OWT_NCCL_SOURCES})
  target_include_directories(owt_lib PRIVATE ${NCCL_INCLUDE_DIR})
  target_link_libraries(owt_lib PUBLIC ${NCCL_LIBRARY})
  # make_communicator.cpp offers the NCCL communicator only when it is built.
  set_property(SOURCE ${CMAKE_SOURCE_DIR}/src/comm/make_communicator.cpp APPEND PROPERTY
               COMPILE_DEFINITIONS OWT_HAVE_NCCL=1)
endif()

target_sources(owt_lib PRIVATE ${OWT_CUDA_SOURCES})
set_property(SOURCE ${_owt_cuda_defined_sources} APPEND PROPERTY COMPILE_DEFINITIONS
             OWT_HAVE_CUDA=1)
target_include_directories(owt_lib PRIVATE ${CUDNN_INCLUDE_DIR})
target_link_libraries(owt_lib PUBLIC CUDA::cudart CUDA::cublas ${CUDNN_LIBRARY})
set_target_properties(owt_lib PROPERTIES CUDA_ARCHITECTURES "90-real;90-virtual"
                      CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
# owt_lib's own flags (-Wall, -march=native, ...) are for the host compiler: hide them from
# nvcc, which gets its own.
get_target_property(_owt_opts owt_lib COMPILE_OPTIONS)
if(_owt_opts)
  set(_owt_cxx_opts)
  foreach(_opt ${_owt_opts})
    list(APPEND _owt_cxx_opts "$<$<COMPILE_LANGUAGE:CXX>:${_opt}>")
  endforeach()
  set_property(TARGET owt_lib PROPERTY COMPILE_OPTIONS ${_owt_cxx_opts})
endif()
target_compile_options(owt_lib PRIVATE
                       $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xcompiler=-Wall>)
