/* daecl opencl backend — the variants of daecl's CPU GEMM kernels
 * (kernels/gemm_cpu.cl) that `daecl tune` tries, the best first as
 * bench/gemm_kernels.sh measured them at R1's shapes on POCL 3.1, 2 cores
 * of AMD EPYC with AVX-512: 4 x 4 tiles of 16 lanes were best over the
 * step, 8 x 2 at A B and A^T B, 2 x 4 and 4 x 4 at A B^T; k unrolled
 * (KU 2, 4) ran slower at A^T B. 6 x 4 and 8 x 3 fill AVX-512's 32
 * registers. A header of its own so that tests/test_backend_conformance.c
 * checks every one of them against the cpu backend. */
#ifndef DAECL_GEMM_CPU_VARIANTS_H
#define DAECL_GEMM_CPU_VARIANTS_H

#define DAECL__OCL_CPU_GEMM_TRIED                                                                  \
    "MR=4 NV=4 VW=16 KU=1", "MR=8 NV=2 VW=16 KU=1", "MR=2 NV=4 VW=16 KU=1",                        \
        "MR=4 NV=2 VW=16 KU=1", "MR=6 NV=4 VW=16 KU=1", "MR=8 NV=3 VW=16 KU=1",                    \
        "MR=4 NV=4 VW=8 KU=2", "MR=4 NV=2 VW=8 KU=1"

#endif
