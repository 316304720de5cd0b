// soundloc's compute kernels: each operation has a portable reference and architecture-specific twins.
#ifndef SOUNDLOC_KERNELS_H
#define SOUNDLOC_KERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/// Version of the kernel interface; bumped when a signature changes.
#define SOUNDLOC_KERNELS_API 1

#ifdef __cplusplus
}
#endif

#endif
