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
# Graph models with batchnorm (tests/interop/*.py, Debian's /usr/bin/python3; exit 77 without
# torch, or without torchvision for resnet18): a small residual net with batchnorm trained by owt
# equals PyTorch's float64 training (weights, momentum, running statistics, eval logits), also
# with Nesterov momentum and label smoothing; torchvision's resnet18 converted by from-torch
# gives owt eval logits equal to PyTorch's.
foreach(variant base nesterov)
  add_test(NAME owt_torch_batchnorm_agreement_${variant}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/batchnorm_agreement_test.py
                   $<TARGET_FILE:owt> ${PROJECT_SOURCE_DIR} --variant ${variant})
  set_tests_properties(owt_torch_batchnorm_agreement_${variant} PROPERTIES LABELS interop TIMEOUT 300
                       SKIP_RETURN_CODE 77)
endforeach()
add_test(NAME owt_torch_resnet18
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/resnet18_torchvision_test.py
                 $<TARGET_FILE:owt> ${PROJECT_SOURCE_DIR})
set_tests_properties(owt_torch_resnet18 PROPERTIES LABELS interop TIMEOUT 300 SKIP_RETURN_CODE 77)
