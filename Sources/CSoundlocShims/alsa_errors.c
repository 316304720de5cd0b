// alsa-lib reports details through a printf-style callback; Swift cannot implement C variadics.
#include "soundloc_shims.h"

#include <alsa/asoundlib.h>
#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512];

static void keep_alsa_error(const char *file, int line, const char *function, int err, const char *fmt, ...) {
    (void)file; (void)line;
    va_list args;
    va_start(args, fmt);
    int used = snprintf(last_error, sizeof last_error, "%s: ", function ? function : "alsa");
    if (used < 0 || (size_t)used >= sizeof last_error) used = 0;
    vsnprintf(last_error + used, sizeof last_error - (size_t)used, fmt, args);
    va_end(args);
    if (err) {
        size_t len = strlen(last_error);
        snprintf(last_error + len, sizeof last_error - len, " (%s)", snd_strerror(err));
    }
}

void soundloc_alsa_capture_errors(void) {
    snd_lib_error_set_handler(keep_alsa_error);
}

const char *soundloc_alsa_last_error(void) {
    return last_error;
}

void soundloc_alsa_clear_error(void) {
    last_error[0] = '\0';
}
