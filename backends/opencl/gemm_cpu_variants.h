/* daecl opencl backend — the variants of daecl's CPU GEMM kernels
 * (kernels/gemm_cpu.cl) that `daecl tune` tries. bench/gemm_kernels.sh at
 * R1's shapes on POCL 3.1, 2 cores of AMD EPYC with AVX-512, under load
 * (GFLOP/s, median of 3 rounds): 6 x 4 and 4 x 4 tiles of 16 lanes
 * 171-219 at every shape, 8 x 2 and 8 x 3 up to 236 at A B and A^T B but
 * 116-178 at A B^T, 2 x 4 up to 212 at A B^T; 8 lanes, or k unrolled, at
 * 104-132. A header of its own so that tests/test_backend_conformance.c
 * checks every one of them against the cpu backend. */
#ifndef DAECL_GEMM_CPU_VARIANTS_H
#define DAECL_GEMM_CPU_VARIANTS_H

#define DAECL__OCL_CPU_GEMM_TRIED                                                                  \
    "MR=4 NV=4 VW=16 KU=1", "MR=8 NV=2 VW=16 KU=1", "MR=2 NV=4 VW=16 KU=1",                        \
        "MR=4 NV=2 VW=16 KU=1", "MR=6 NV=4 VW=16 KU=1", "MR=8 NV=3 VW=16 KU=1",                    \
        "MR=4 NV=4 VW=8 KU=2", "MR=4 NV=2 VW=8 KU=1"

#endif
