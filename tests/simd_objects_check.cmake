# Fails when the GEMM's object (libattend.a's gemm_kernels.cc.o) calls libm's fma or fmaf: its
# tiles were then compiled for the baseline instruction set, each 512-bit multiply-add becoming 16
# library calls. That happens to vector code inlined into an OpenMP parallel region under clang,
# whose outlined function does not inherit the target attributes (gemm_kernels.cc, PanelRows).
#   cmake -DNM=nm -DLIB=libattend.a -P simd_objects_check.cmake
execute_process(COMMAND ${NM} -A ${LIB} OUTPUT_VARIABLE symbols RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "simd_objects_check: ${NM} -A ${LIB} failed (${status})")
endif()
string(REGEX MATCHALL "[^\n]*gemm_kernels\\.cc\\.o:[^\n]*" gemm_lines "${symbols}")
list(LENGTH gemm_lines count)
if(count EQUAL 0)
  message(FATAL_ERROR "simd_objects_check: no gemm_kernels.cc.o symbols in ${LIB}")
endif()
foreach(line ${gemm_lines})
  if(line MATCHES " U (fmaf|fma)$")
    message(FATAL_ERROR "simd_objects_check: gemm_kernels.cc.o calls libm: ${line}")
  endif()
endforeach()
message(STATUS "simd_objects_check: gemm_kernels.cc.o (${count} symbols) calls no libm fma")
