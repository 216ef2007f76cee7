# OWT_SANITIZE: every C and C++ target (library, CLI, tests, benchmarks) compiled and linked
# with AddressSanitizer (+ LeakSanitizer) and UndefinedBehaviorSanitizer, any UB report fatal.
# CPU only: the top-level CMakeLists.txt forces OWT_WITH_CUDA OFF. Build it in its own
# directory and run it with tools/sanitize.sh (which sets ASAN/LSAN/UBSAN_OPTIONS).
# Third-party libraries (oneDNN, Open MPI, OpenCV) are not instrumented.
if(NOT OWT_SANITIZE)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  message(FATAL_ERROR "OWT_SANITIZE needs g++ or clang++ (found ${CMAKE_CXX_COMPILER_ID})")
endif()
set(OWT_SANITIZE_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer)
add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:${OWT_SANITIZE_FLAGS}>")
# After the build type's flags on the command line, so these win: -O1 (what ASan's authors
# recommend) and -g1 (line tables: file:line in every report) compile in about half the time
# of RelWithDebInfo's -O2 -g, which counts on a 2-core CI machine.
add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:-O1;-g1>")
add_link_options(-fsanitize=address,undefined)
# GCC's manual: sanitizers raise the rate of false -Wmaybe-uninitialized warnings (g++ 12
# reports <regex>'s std::function members under ASan); the normal build keeps them.
add_compile_options($<$<COMPILE_LANG_AND_ID:CXX,GNU>:-Wno-maybe-uninitialized>)
message(STATUS "owt: OWT_SANITIZE: ASan + UBSan, CPU only (OWT_WITH_CUDA OFF)")
