// ISA detection (x86: CPUID and XGETBV; AArch64: the kernel's hardware capabilities), the dispatch tables (the only
// place that chooses a kernel by path), the CK_ISA override and the thread setting.
#define _GNU_SOURCE
#include "ckernels.h"
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#endif
#if defined(__aarch64__)
#include <sys/auxv.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

static int g_supported[CK_ISA_COUNT];
#if defined(__x86_64__)
static int g_f16c;   // F16C (vcvtph2ps/vcvtps2ph on ymm): the AVX2 path's binary16 conversions
#endif
// One table per path, filled once by init_once; g_table points at the active one (read and switched atomically:
// a driver running on another thread keeps the table it started with).
static ck_dispatch g_tables[CK_ISA_COUNT];
static const ck_dispatch *g_table = &g_tables[CK_ISA_REF];
static int g_threads = 1;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

// Linux: a process must ask for the AMX tile state before it may use it (arch/x86/include/uapi/asm/prctl.h).
#define CK_ARCH_REQ_XCOMP_PERM 0x1023
#define CK_XFEATURE_XTILEDATA 18

static void detect_x86(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return;
    uint64_t xcr0 = xgetbv0();
    int ymm_os = (xcr0 & 0x6) == 0x6;
    int zmm_os = (xcr0 & 0xe6) == 0xe6;
    int tile_os = (xcr0 & 0x60000) == 0x60000;
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    int avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    int vnni = (c >> 11) & 1;
    int amx_tile = (d >> 24) & 1, amx_int8 = (d >> 25) & 1;
    g_supported[CK_ISA_AVX2] = ymm_os && avx2 && fma;
    g_f16c = ymm_os && f16c;
    g_supported[CK_ISA_AVX512] = g_supported[CK_ISA_AVX2] && zmm_os && avx512f && avx512bw && avx512vl && vnni;
    if (g_supported[CK_ISA_AVX512] && amx_tile && amx_int8 && tile_os) {
        // Refused (old kernel, seccomp, hypervisor): fall back silently to AVX-512.
        long r = syscall(SYS_arch_prctl, CK_ARCH_REQ_XCOMP_PERM, CK_XFEATURE_XTILEDATA);
        g_supported[CK_ISA_AMX] = (r == 0);
    }
}
#endif

#if defined(__aarch64__)
// Linux's AArch64 hwcap bits (arch/arm64/include/uapi/asm/hwcap.h), spelled out so that old headers do not matter.
#define CK_HWCAP_ASIMD (1UL << 1)
#define CK_HWCAP_ASIMDDP (1UL << 20)
#define CK_HWCAP2_I8MM (1UL << 13)

static void detect_arm(void) {
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    g_supported[CK_ISA_NEON] = (hw & CK_HWCAP_ASIMD) != 0;
    g_supported[CK_ISA_DOTPROD] = g_supported[CK_ISA_NEON] && (hw & CK_HWCAP_ASIMDDP) != 0;
    g_supported[CK_ISA_I8MM] = g_supported[CK_ISA_NEON] && (hw2 & CK_HWCAP2_I8MM) != 0;
}
#endif

// ---------------------------------------------------------------------------------------------------------
// The dispatch table of each path.
// ---------------------------------------------------------------------------------------------------------
// Attention rows: a vector path needs D to be a multiple of its width (AVX-512: 16, AVX2: 8, NEON: 4); otherwise the next
// narrower one runs, down to the scalar rows.
static ck_attention_rows_fn attention_rows_ref(int D) {
    (void)D;
    return ck_attention_rows_ref;
}
#if defined(__x86_64__)
static ck_attention_rows_fn attention_rows_avx2(int D) {
    return D % 8 == 0 ? ck_attention_rows_avx2 : ck_attention_rows_ref;
}
static ck_attention_rows_fn attention_rows_avx512(int D) {
    return D % 16 == 0 ? ck_attention_rows_avx512 : attention_rows_avx2(D);
}
#endif
#if defined(__aarch64__)
static ck_attention_rows_fn attention_rows_neon(int D) {
    return D % 4 == 0 ? ck_attention_rows_neon : ck_attention_rows_ref;
}
#endif

static void fill_table(ck_dispatch *t, ck_isa isa) {
    // The scalar entries; each architecture overrides them for its own paths below (the other architecture's paths
    // keep them and are never supported).
    *t = (ck_dispatch){
        .isa = isa,
        .f32_kernel = ck_f32_kernel_ref,
        .f32_mr = CK_F32_MR_REF,
        .q8_kernel = ck_q8_kernel_ref,
        .q8_mr = CK_Q8_MR_REF,
        .w16_kernel = ck_w16_kernel_ref,
        .w16_mr = CK_W16_MR_REF,
        .q8_quantize_rows = ck_q8_quantize_rows_ref,
        .sigmoid_gate = ck_sigmoid_gate_ref,
        .f16_to_f32 = ck_f16_to_f32_ref,
        .f32_to_f16 = ck_f32_to_f16_ref,
        .attention_rows = attention_rows_ref,
    };
#if defined(__x86_64__)
    switch (isa) {
    case CK_ISA_AVX2:
        t->f32_kernel = ck_f32_kernel_avx2;
        t->f32_mr = CK_F32_MR_AVX2;
        t->q8_kernel = ck_q8_kernel_avx2;
        t->q8_mr = CK_Q8_MR_AVX2;
        t->w16_kernel = ck_w16_kernel_avx2;
        t->w16_mr = CK_W16_MR_AVX2;
        t->sigmoid_gate = ck_sigmoid_gate_avx2;
        t->q8_quantize_rows = ck_q8_quantize_rows_avx2;
        if (g_f16c) {
            t->f16_to_f32 = ck_f16_to_f32_f16c;
            t->f32_to_f16 = ck_f32_to_f16_f16c;
        }
        t->attention_rows = attention_rows_avx2;
        break;
    case CK_ISA_AVX512:
    case CK_ISA_AMX:
        // AMX is the AVX-512 path with AMX-INT8 tiles for the int8 micro-kernel only (no f32 tiles).
        t->f32_kernel = ck_f32_kernel_avx512;
        t->f32_mr = CK_F32_MR_AVX512;
        t->q8_kernel = isa == CK_ISA_AMX ? ck_q8_kernel_amx : ck_q8_kernel_avx512;
        t->q8_mr = isa == CK_ISA_AMX ? CK_Q8_MR_AMX : CK_Q8_MR_AVX512;
        // int8 × int16 (Winograd): the AVX2 kernel (vpdpbusd and AMX tiles take int8 operands only)
        t->w16_kernel = ck_w16_kernel_avx2;
        t->w16_mr = CK_W16_MR_AVX2;
        t->q8_quantize_rows = ck_q8_quantize_rows_avx512;
        t->sigmoid_gate = ck_sigmoid_gate_avx512;
        t->f16_to_f32 = ck_f16_to_f32_avx512;
        t->f32_to_f16 = ck_f32_to_f16_avx512;
        t->attention_rows = attention_rows_avx512;
        break;
    default: break;
    }
#endif
#if defined(__aarch64__)
    // The three paths share the NEON kernels and differ in the int8 micro-kernel only.
    if (isa == CK_ISA_NEON || isa == CK_ISA_DOTPROD || isa == CK_ISA_I8MM) {
        t->f32_kernel = ck_f32_kernel_neon;
        t->f32_mr = CK_F32_MR_NEON;
        t->q8_kernel = isa == CK_ISA_I8MM ? ck_q8_kernel_i8mm : isa == CK_ISA_DOTPROD ? ck_q8_kernel_dotprod : ck_q8_kernel_neon;
        t->q8_mr = CK_Q8_MR_NEON;
        t->q8_quantize_rows = ck_q8_quantize_rows_neon;
        t->sigmoid_gate = ck_sigmoid_gate_neon;
        t->f16_to_f32 = ck_f16_to_f32_neon;
        t->f32_to_f16 = ck_f32_to_f16_neon;
        t->attention_rows = attention_rows_neon;
    }
#endif
}

static ck_isa best_supported(void) {
    for (int i = CK_ISA_COUNT - 1; i > 0; i--)
        if (g_supported[i]) return (ck_isa)i;
    return CK_ISA_REF;
}

// The cores this process may run on: its CPU affinity (a cpuset or taskset narrows it), else the online cores.
static int usable_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (int)cores : 1;
}

int ck_usable_cores(void) { return usable_cores(); }

static void init_once(void) {
    g_supported[CK_ISA_REF] = 1;
#if defined(__x86_64__)
    detect_x86();
#endif
#if defined(__aarch64__)
    detect_arm();
#endif
    for (int i = 0; i < CK_ISA_COUNT; i++) fill_table(&g_tables[i], (ck_isa)i);
    ck_isa active = best_supported();
    const char *env = getenv("CK_ISA");
    if (env) {
        for (int i = 0; i < CK_ISA_COUNT; i++)
            if (strcmp(env, ck_isa_name((ck_isa)i)) == 0 && g_supported[i]) active = (ck_isa)i;
    }
    __atomic_store_n(&g_table, &g_tables[active], __ATOMIC_RELEASE);
    g_threads = usable_cores();
    const char *t = getenv("UNCLIP_THREADS");
    if (t) {
        char *end = NULL;
        long n = strtol(t, &end, 10);
        if (end && *end == 0 && n >= 1 && n <= 1024) g_threads = (int)n;
    }
}

static void init(void) { pthread_once(&g_once, init_once); }

ck_isa ck_isa_host_best(void) {
    init();
    return best_supported();
}

int ck_isa_supported(ck_isa isa) {
    init();
    return isa >= 0 && isa < CK_ISA_COUNT && g_supported[isa];
}

const ck_dispatch *ck_dispatch_active(void) {
    init();
    return __atomic_load_n(&g_table, __ATOMIC_ACQUIRE);
}

ck_isa ck_isa_active(void) { return ck_dispatch_active()->isa; }

int ck_isa_set(ck_isa isa) {
    if (!ck_isa_supported(isa)) return -1;
    __atomic_store_n(&g_table, &g_tables[isa], __ATOMIC_RELEASE);
    return 0;
}

const char *ck_isa_name(ck_isa isa) {
    switch (isa) {
    case CK_ISA_REF: return "ref";
    case CK_ISA_AVX2: return "avx2";
    case CK_ISA_AVX512: return "avx512";
    case CK_ISA_AMX: return "amx";
    case CK_ISA_NEON: return "neon";
    case CK_ISA_DOTPROD: return "dotprod";
    case CK_ISA_I8MM: return "i8mm";
    default: return "unknown";
    }
}

void ck_set_threads(int n) {
    init();
    g_threads = n < 1 ? 1 : n;
}

int ck_get_threads(void) {
    init();
    return g_threads;
}

int ck_thread_index(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
