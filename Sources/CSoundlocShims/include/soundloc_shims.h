// C helpers for what Swift cannot express: variadic callbacks, function-like macros, SIMD intrinsics.
#ifndef SOUNDLOC_SHIMS_H
#define SOUNDLOC_SHIMS_H

#include <stddef.h>
#include "soundloc_v4l2.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Routes alsa-lib's diagnostics (a variadic callback) into a per-thread buffer instead of stderr.
void soundloc_alsa_capture_errors(void);
/// The last alsa-lib diagnostic on this thread, or "" when there was none.
const char *soundloc_alsa_last_error(void);
/// Forgets this thread's last alsa-lib diagnostic, so it is not blamed on a later call.
void soundloc_alsa_clear_error(void);

#ifdef __cplusplus
}
#endif

#endif
