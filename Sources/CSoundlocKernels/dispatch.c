// Start-up choice of the implementation: CPU features, or $SOUNDLOC_KERNELS to force one.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q8-gemm-internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#endif

// Best first: auto-selection takes the first one the CPU supports.
static const soundloc_q8_gemm_impl *const q8_impls[] = {
#if defined(__x86_64__)
    &q8_impl_avx512vnni,
    &q8_impl_avx2,
#endif
#if defined(__aarch64__)
    &q8_impl_neondot,
    &q8_impl_neon,
#endif
    &q8_impl_reference,
};
// Every implementation name on any architecture, best first within each: the one list the Swift side reads too.
static const char *const q8_known_names[] = {"avx512vnni", "avx2", "neondot", "neon", "reference"};

static const soundloc_q8_gemm_impl *q8_active;  // accessed with __atomic builtins
static const soundloc_q8_gemm_impl *q8_default; // a configured choice below $SOUNDLOC_KERNELS; __atomic builtins
static char q8_error[256];

const char *soundloc_kernels_name(size_t i) {
    return i < sizeof q8_known_names / sizeof q8_known_names[0] ? q8_known_names[i] : NULL;
}

#if defined(__x86_64__)
// The OS saves and restores the opmask and full ZMM registers (XCR0 bits 1, 2, 5, 6, 7). libgcc's and compiler-rt's
// __builtin_cpu_supports both test this before reporting AVX-512 features, but which runtime (and which version)
// gets linked is the toolchain's choice, so the kernel that needs it checks directly as well.
static int os_saves_zmm(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return 0;  // xgetbv would fault
    unsigned int xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    return (xcr0_lo & 0xE6u) == 0xE6u;
}
#endif

static int cpu_supports(const soundloc_q8_gemm_impl *impl) {
    if (impl == &q8_impl_reference) return 1;
#if defined(__x86_64__)
    if (impl == &q8_impl_avx2) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    if (impl == &q8_impl_avx512vnni) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") && os_saves_zmm();
    }
#endif
#if defined(__aarch64__)
#if defined(__linux__)
    const unsigned long hw = getauxval(AT_HWCAP);
    if (impl == &q8_impl_neon) return (hw & HWCAP_ASIMD) != 0;
    if (impl == &q8_impl_neondot) return (hw & HWCAP_ASIMD) && (hw & HWCAP_ASIMDDP);
#else
    if (impl == &q8_impl_neon) return 1;
#endif
#endif
    return 0;
}

const soundloc_q8_gemm_impl *soundloc_kernels_impl(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof q8_impls / sizeof q8_impls[0]; i++)
        if (strcmp(q8_impls[i]->name, name) == 0) return q8_impls[i];
    return NULL;
}

int soundloc_kernels_supported(const char *name) {
    const soundloc_q8_gemm_impl *impl = soundloc_kernels_impl(name);
    return impl && cpu_supports(impl);
}

static int fail(int code, const char *fmt, const char *name, const char *origin) {
    snprintf(q8_error, sizeof q8_error, fmt, name, origin);
    return code;
}

int soundloc_kernels_select(const char *name_or_null) {
    const char *name = name_or_null, *origin = "";
    if (!name) {
        const char *env = getenv("SOUNDLOC_KERNELS");
        if (env && *env) name = env, origin = " (from SOUNDLOC_KERNELS)";
    }
    const soundloc_q8_gemm_impl *configured = __atomic_load_n(&q8_default, __ATOMIC_ACQUIRE);
    if (!name && configured) name = configured->name, origin = " (configured)";
    const soundloc_q8_gemm_impl *chosen = NULL;
    if (name) {
        chosen = soundloc_kernels_impl(name);
        if (!chosen) {
            int known = 0;
            for (size_t i = 0; i < sizeof q8_known_names / sizeof q8_known_names[0]; i++)
                known |= strcmp(q8_known_names[i], name) == 0;
            if (!known)
                return fail(SOUNDLOC_KERNELS_EUNKNOWN,
                            "unknown kernel implementation '%s'%s: expected avx512vnni, avx2, neondot, neon or reference",
                            name, origin);
            return fail(SOUNDLOC_KERNELS_EUNSUPPORTED, "kernel implementation '%s'%s is not built for this architecture",
                        name, origin);
        }
        if (!cpu_supports(chosen))
            return fail(SOUNDLOC_KERNELS_EUNSUPPORTED, "kernel implementation '%s'%s is not supported by this CPU", name, origin);
    } else {
        for (size_t i = 0; !chosen && i < sizeof q8_impls / sizeof q8_impls[0]; i++)
            if (cpu_supports(q8_impls[i])) chosen = q8_impls[i];
    }
    __atomic_store_n(&q8_active, chosen, __ATOMIC_RELEASE);
    return SOUNDLOC_KERNELS_OK;
}

const char *soundloc_kernels_cpu_features(void) {
    static char text[160];
    char *p = text, *end = text + sizeof text;
#define FEATURE(cond, name) p += snprintf(p, (size_t)(end - p), "%s%s%s", p == text ? "" : " ", (cond) ? "" : "no ", name)
#if defined(__x86_64__)
    __builtin_cpu_init();
    FEATURE(__builtin_cpu_supports("avx2"), "avx2");
    FEATURE(__builtin_cpu_supports("fma"), "fma");
    FEATURE(__builtin_cpu_supports("avx512bw"), "avx512bw");
    FEATURE(__builtin_cpu_supports("avx512vnni") && os_saves_zmm(), "avx512vnni");
#elif defined(__aarch64__) && defined(__linux__)
    const unsigned long hw = getauxval(AT_HWCAP);
    FEATURE(hw & HWCAP_ASIMD, "asimd");
    FEATURE(hw & HWCAP_ASIMDDP, "asimddp (dot product)");
#else
    FEATURE(0, "SIMD features known to soundloc");
#endif
#undef FEATURE
    return text;
}

int soundloc_kernels_set_default(const char *name_or_null) {
    const soundloc_q8_gemm_impl *impl = NULL;
    if (name_or_null) {
        impl = soundloc_kernels_impl(name_or_null);
        int known = 0;
        for (size_t i = 0; soundloc_kernels_name(i); i++) known |= strcmp(soundloc_kernels_name(i), name_or_null) == 0;
        if (!known)
            return fail(SOUNDLOC_KERNELS_EUNKNOWN,
                        "unknown kernel implementation '%s'%s: expected avx512vnni, avx2, neondot, neon or reference",
                        name_or_null, "");
        if (!impl || !cpu_supports(impl))
            return fail(SOUNDLOC_KERNELS_EUNSUPPORTED, "kernel implementation '%s'%s is not supported by this CPU",
                        name_or_null, "");
    }
    __atomic_store_n(&q8_default, impl, __ATOMIC_RELEASE);
    return SOUNDLOC_KERNELS_OK;
}

const char *soundloc_kernels_error(void) { return q8_error; }

const soundloc_q8_gemm_impl *soundloc_kernels_active(void) {
    const soundloc_q8_gemm_impl *impl = __atomic_load_n(&q8_active, __ATOMIC_ACQUIRE);
    if (impl) return impl;
    // Nobody selected at start-up: a forced choice that fails still yields a working kernel, but says so once.
    if (soundloc_kernels_select(NULL) != SOUNDLOC_KERNELS_OK) {
        fprintf(stderr, "soundloc: %s; using auto-detected kernels\n", q8_error);
        const soundloc_q8_gemm_impl *best = NULL;
        for (size_t i = 0; !best && i < sizeof q8_impls / sizeof q8_impls[0]; i++)
            if (cpu_supports(q8_impls[i])) best = q8_impls[i];
        const soundloc_q8_gemm_impl *expected = NULL;
        __atomic_compare_exchange_n(&q8_active, &expected, best, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    }
    return __atomic_load_n(&q8_active, __ATOMIC_ACQUIRE);
}

const char *soundloc_kernels_active_name(void) { return soundloc_kernels_active()->name; }

size_t soundloc_q8_gemm_packed_size(size_t n, size_t k) { return soundloc_kernels_active()->packed_size(n, k); }

int soundloc_q8_gemm_pack_weights(size_t n, size_t k, const int8_t *w, const int32_t *bias, uint8_t a_zp,
                                  void *packed) {
    return soundloc_kernels_active()->pack_weights(n, k, w, bias, a_zp, packed);
}

int soundloc_q8_gemm(const void *packed, size_t m0, size_t m1, size_t n0, size_t n1, const uint8_t *a, size_t lda,
                     const soundloc_q8_requant *rq, uint8_t *c, size_t ldc) {
    return soundloc_kernels_active()->gemm_q8(packed, m0, m1, n0, n1, a, lda, rq, c, ldc);
}

int soundloc_q8_gemm_i32(const void *packed, size_t m0, size_t m1, size_t n0, size_t n1, const uint8_t *a, size_t lda,
                         int32_t *c, size_t ldc) {
    return soundloc_kernels_active()->gemm_i32(packed, m0, m1, n0, n1, a, lda, c, ldc);
}
