// The process's malloc settings that the engine needs (ckernels.h). Swift's Glibc module does not export malloc.h.
#include "ckernels.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int ck_malloc_fix_mmap_threshold(size_t bytes) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, (int)bytes);
#else
    (void)bytes;
    return 0;
#endif
}
