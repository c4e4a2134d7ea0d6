/* daecl opencl backend — the variants of daecl's CPU GEMM kernels
 * (kernels/gemm_cpu.cl) that `daecl tune` tries, most promising first
 * (measured on POCL 3.1, AVX-512, ocl_gemm_cpu.c). A header of its own so
 * that tests/test_backend_conformance.c checks every one of them against
 * the cpu backend. */
#ifndef DAECL_GEMM_CPU_VARIANTS_H
#define DAECL_GEMM_CPU_VARIANTS_H

#define DAECL__OCL_CPU_GEMM_TRIED                                                                  \
    "MR=4 NV=2 VW=16 KU=1", "MR=8 NV=2 VW=16 KU=1", "MR=4 NV=4 VW=16 KU=1",                        \
        "MR=6 NV=2 VW=16 KU=2", "MR=4 NV=4 VW=8 KU=2", "MR=8 NV=1 VW=16 KU=4",                     \
        "MR=2 NV=4 VW=16 KU=1", "MR=4 NV=2 VW=8 KU=1"

#endif
