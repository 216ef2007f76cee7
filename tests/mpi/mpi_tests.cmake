# Tests run under mpirun -np K (label `mpi`), built only with OWT_WITH_MPI.
# owt_add_mpi_gtest_executable() builds a gtest program with the MPI-aware main;
# owt_add_mpi_test() registers <name>_np<K> for K = 1..4 (or NP ...).
if(NOT OWT_WITH_MPI)
  return()
endif()

set(OWT_MPI_DIR ${CMAKE_CURRENT_LIST_DIR})
set(OWT_MPI_ENV "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")

# Open MPI refuses more ranks than cores without --oversubscribe; other MPIs reject the flag.
execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE _owt_mpiexec_version
                ERROR_QUIET TIMEOUT 20)
set(OWT_MPIEXEC_FLAGS ${MPIEXEC_PREFLAGS})
if(_owt_mpiexec_version MATCHES "Open MPI|OpenRTE")
  list(PREPEND OWT_MPIEXEC_FLAGS --oversubscribe)
endif()

# owt_add_mpi_gtest_executable(target source...): gtest program whose main (comm_test_main.cpp)
# holds the MPI session, prints from rank 0 and agrees on the exit code across ranks.
function(owt_add_mpi_gtest_executable target)
  add_executable(${target} ${ARGN} ${OWT_MPI_DIR}/comm_test_main.cpp)
  target_link_libraries(${target} PRIVATE owt_test_support GTest::gtest MPI::MPI_C)
  owt_target_warnings(${target})
  # C API only: keep Open MPI / MPICH from pulling in their deprecated C++ bindings.
  target_compile_definitions(${target} PRIVATE OWT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                             OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
endfunction()

# owt_add_mpi_test(name target [NP k...] [TIMEOUT s] [ARGS arg...]): one ctest per K running
# `mpiexec --oversubscribe -np K target args`, named <name>_np<K>, label mpi.
function(owt_add_mpi_test name target)
  cmake_parse_arguments(PARSE_ARGV 2 opt "" "TIMEOUT" "NP;ARGS")
  if(NOT opt_NP)
    set(opt_NP 1 2 3 4)
  endif()
  if(NOT opt_TIMEOUT)
    set(opt_TIMEOUT 60)
  endif()
  foreach(k ${opt_NP})
    add_test(NAME ${name}_np${k}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${k} ${OWT_MPIEXEC_FLAGS}
                     $<TARGET_FILE:${target}> ${MPIEXEC_POSTFLAGS} ${opt_ARGS})
    set_tests_properties(${name}_np${k} PROPERTIES LABELS mpi TIMEOUT ${opt_TIMEOUT}
                         ENVIRONMENT "${OWT_MPI_ENV}" PROCESSORS ${k})
  endforeach()
endfunction()

# ---- the communicator ------------------------------------------------------------------
owt_add_mpi_gtest_executable(owt_comm_mpi_tests ${OWT_MPI_DIR}/mpi_communicator_test.cpp)
owt_add_mpi_test(comm_mpi owt_comm_mpi_tests)

# A failing rank ends every rank: expect a non-zero exit, the message, and no hang.
add_executable(owt_abort_probe ${OWT_MPI_DIR}/abort_probe.cpp)
target_link_libraries(owt_abort_probe PRIVATE owt_lib)
owt_target_warnings(owt_abort_probe)
foreach(k 2 3)
  math(EXPR last "${k} - 1")
  add_test(NAME comm_abort_np${k}
           COMMAND ${CMAKE_COMMAND} "-DEXPECT=owt: rank ${last}: error: probe failure"
                   -DMAX_SECONDS=30 -P ${OWT_MPI_DIR}/expect_abort.cmake --
                   ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${k} ${OWT_MPIEXEC_FLAGS}
                   $<TARGET_FILE:owt_abort_probe> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(comm_abort_np${k} PROPERTIES LABELS mpi TIMEOUT 60
                       ENVIRONMENT "${OWT_MPI_ENV}" PROCESSORS ${k})
endforeach()

# ---- the K-worker invariant (docs/ARCHITECTURE.md) -------------------------------------------------
owt_add_mpi_gtest_executable(owt_invariant_tests ${OWT_MPI_DIR}/invariant_test.cpp)
owt_add_mpi_test(invariant owt_invariant_tests TIMEOUT 120)

# ---- mpirun around the owt binary: multi-worker CLI, failing ranks, resharding ----------
add_executable(owt_cli_mpi_tests ${OWT_MPI_DIR}/cli_mpi_test.cpp ${OWT_MPI_DIR}/confusion_mpi_test.cpp)
target_link_libraries(owt_cli_mpi_tests PRIVATE owt_test_support GTest::gtest_main)
owt_target_warnings(owt_cli_mpi_tests)
target_compile_definitions(owt_cli_mpi_tests PRIVATE OWT_MPIEXEC="${MPIEXEC_EXECUTABLE}")
add_dependencies(owt_cli_mpi_tests owt)
gtest_discover_tests(owt_cli_mpi_tests PROPERTIES LABELS mpi DISCOVERY_TIMEOUT 60
                     ENVIRONMENT "${OWT_MPI_ENV}")

# ---- checkpoints without gathering: K workers' file = one worker's, resharded loads --------
owt_add_mpi_gtest_executable(owt_checkpoint_mpi_tests ${OWT_MPI_DIR}/checkpoint_mpi_test.cpp)
owt_add_mpi_test(checkpoint_mpi owt_checkpoint_mpi_tests)

# ---- memory: estimates against every rank's peak RSS; the refusal ends every rank ---------
add_executable(owt_memory_mpi_tests ${OWT_MPI_DIR}/memory_mpi_test.cpp)
target_link_libraries(owt_memory_mpi_tests PRIVATE owt_test_support GTest::gtest_main)
owt_target_warnings(owt_memory_mpi_tests)
target_compile_definitions(owt_memory_mpi_tests PRIVATE OWT_MPIEXEC="${MPIEXEC_EXECUTABLE}")
add_dependencies(owt_memory_mpi_tests owt)
gtest_discover_tests(owt_memory_mpi_tests PROPERTIES LABELS mpi DISCOVERY_TIMEOUT 60
                     ENVIRONMENT "${OWT_MPI_ENV}")
