// libv4l2 is loaded at run time: the SoundlocCapture target does not link it, and a board without it
// can still use cameras that deliver RGB24 natively.
#ifdef __linux__
#include "soundloc_v4l2.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

const unsigned long SOUNDLOC_VIDIOC_QUERYCAP = VIDIOC_QUERYCAP;
const unsigned long SOUNDLOC_VIDIOC_ENUM_FMT = VIDIOC_ENUM_FMT;
const unsigned long SOUNDLOC_VIDIOC_ENUM_FRAMESIZES = VIDIOC_ENUM_FRAMESIZES;
const unsigned long SOUNDLOC_VIDIOC_ENUM_FRAMEINTERVALS = VIDIOC_ENUM_FRAMEINTERVALS;
const unsigned long SOUNDLOC_VIDIOC_G_FMT = VIDIOC_G_FMT;
const unsigned long SOUNDLOC_VIDIOC_S_FMT = VIDIOC_S_FMT;
const unsigned long SOUNDLOC_VIDIOC_G_PARM = VIDIOC_G_PARM;
const unsigned long SOUNDLOC_VIDIOC_S_PARM = VIDIOC_S_PARM;
const unsigned long SOUNDLOC_VIDIOC_REQBUFS = VIDIOC_REQBUFS;
const unsigned long SOUNDLOC_VIDIOC_QUERYBUF = VIDIOC_QUERYBUF;
const unsigned long SOUNDLOC_VIDIOC_QBUF = VIDIOC_QBUF;
const unsigned long SOUNDLOC_VIDIOC_DQBUF = VIDIOC_DQBUF;
const unsigned long SOUNDLOC_VIDIOC_STREAMON = VIDIOC_STREAMON;
const unsigned long SOUNDLOC_VIDIOC_STREAMOFF = VIDIOC_STREAMOFF;
const unsigned long SOUNDLOC_VIDIOC_S_CTRL = VIDIOC_S_CTRL;

const uint32_t SOUNDLOC_V4L2_PIX_FMT_RGB24 = V4L2_PIX_FMT_RGB24;
const uint32_t SOUNDLOC_V4L2_PIX_FMT_YUYV = V4L2_PIX_FMT_YUYV;
const uint32_t SOUNDLOC_V4L2_PIX_FMT_MJPEG = V4L2_PIX_FMT_MJPEG;

int soundloc_ioctl(int fd, unsigned long request, void *arg) {
    int result;
    do {
        result = ioctl(fd, request, arg);
    } while (result == -1 && errno == EINTR);
    return result;
}

// Signatures of libv4l2.h, spelled out so that the header is not needed at build time.
static struct {
    int (*fd_open)(int fd, int v4l2_flags);
    int (*close)(int fd);
    int (*ioctl)(int fd, unsigned long request, ...);
    void *(*mmap)(void *start, size_t length, int prot, int flags, int fd, int64_t offset);
    int (*munmap)(void *start, size_t length);
} lib;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void load_libv4l2(void) {
    void *handle = dlopen("libv4l2.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!handle) return;
    lib.fd_open = (int (*)(int, int))dlsym(handle, "v4l2_fd_open");
    lib.close = (int (*)(int))dlsym(handle, "v4l2_close");
    lib.ioctl = (int (*)(int, unsigned long, ...))dlsym(handle, "v4l2_ioctl");
    lib.mmap = (void *(*)(void *, size_t, int, int, int, int64_t))dlsym(handle, "v4l2_mmap");
    lib.munmap = (int (*)(void *, size_t))dlsym(handle, "v4l2_munmap");
    if (!lib.fd_open || !lib.close || !lib.ioctl || !lib.mmap || !lib.munmap) {
        // A partial library would mix wrapped and unwrapped calls on one descriptor: use none of it.
        lib.fd_open = NULL;
        dlclose(handle);
    }
}

int soundloc_v4l2_available(void) {
    pthread_once(&lib_once, load_libv4l2);
    return lib.fd_open != NULL;
}

int soundloc_v4l2_fd_open(int fd) {
    if (!soundloc_v4l2_available()) return fd;
    return lib.fd_open(fd, 0);
}

int soundloc_v4l2_close(int fd) {
    return soundloc_v4l2_available() ? lib.close(fd) : close(fd);
}

int soundloc_v4l2_ioctl(int fd, unsigned long request, void *arg) {
    if (!soundloc_v4l2_available()) return soundloc_ioctl(fd, request, arg);
    int result;
    do {
        result = lib.ioctl(fd, request, arg);
    } while (result == -1 && errno == EINTR);
    return result;
}

void *soundloc_v4l2_mmap(size_t length, int fd, int64_t offset) {
    if (!soundloc_v4l2_available()) return mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
    return lib.mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
}

int soundloc_v4l2_munmap(void *start, size_t length) {
    return soundloc_v4l2_available() ? lib.munmap(start, length) : munmap(start, length);
}
#endif
