# owt's warning flags, given to each of owt's own targets PRIVATE (never through owt_lib's
# interface): -Wall -Wextra for g++/clang++, -Wall for the host compiler under nvcc.
set(OWT_CXX_WARNINGS -Wall -Wextra -Wno-unused-parameter)

# owt_target_warnings(target): compile target's C++ (and CUDA) sources with owt's warnings.
function(owt_target_warnings target)
  target_compile_options(${target} PRIVATE
                         "$<$<COMPILE_LANGUAGE:CXX>:${OWT_CXX_WARNINGS}>"
                         "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall>")
endfunction()
