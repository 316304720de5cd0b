// Internal: pieces shared by the aarch64 implementations (neon, neondot).
#ifndef SOUNDLOC_Q8_GEMM_NEON_H
#define SOUNDLOC_Q8_GEMM_NEON_H

#include "q8-gemm-internal.h"

void q8_requant_neon(size_t rows, size_t cols, const int32_t *acc, size_t acc_stride, size_t m, size_t n,
                     const soundloc_q8_requant *rq, uint8_t *c, size_t ldc);
void q8_pack_a_s8_neon(const uint8_t *a, size_t lda, size_t rows, size_t k0, size_t kvalid, size_t kcpad, void *abuf);

#endif
