# owt <-> PyTorch interop test (label interop): needs Debian's /usr/bin/python3 with python3-torch
# and python3-yaml (tools/install_deps.sh); exits 77 (skipped) without them.
add_test(NAME owt_torch_interop
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/torch_interop_test.sh $<TARGET_FILE:owt>
                 ${PROJECT_SOURCE_DIR})
set_tests_properties(owt_torch_interop PROPERTIES LABELS interop TIMEOUT 300 SKIP_RETURN_CODE 77)
# Untrusted .pt files run no code in tools/torch_interop.py (weights_only loading); safetensors
# inputs are accepted instead.
add_test(NAME owt_torch_untrusted_files
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/untrusted_files_test.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(owt_torch_untrusted_files PROPERTIES LABELS interop TIMEOUT 300
                     SKIP_RETURN_CODE 77)
