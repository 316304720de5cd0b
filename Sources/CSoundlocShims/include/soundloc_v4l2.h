// V4L2 for Swift: the VIDIOC_* request codes and pixel formats are function-like macros, and ioctl and
// libv4l2's v4l2_ioctl are variadic, so neither can be used from Swift directly.
#ifndef SOUNDLOC_V4L2_H
#define SOUNDLOC_V4L2_H

#ifdef __linux__
#include <linux/videodev2.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

extern const unsigned long SOUNDLOC_VIDIOC_QUERYCAP;
extern const unsigned long SOUNDLOC_VIDIOC_ENUM_FMT;
extern const unsigned long SOUNDLOC_VIDIOC_ENUM_FRAMESIZES;
extern const unsigned long SOUNDLOC_VIDIOC_ENUM_FRAMEINTERVALS;
extern const unsigned long SOUNDLOC_VIDIOC_G_FMT;
extern const unsigned long SOUNDLOC_VIDIOC_S_FMT;
extern const unsigned long SOUNDLOC_VIDIOC_G_PARM;
extern const unsigned long SOUNDLOC_VIDIOC_S_PARM;
extern const unsigned long SOUNDLOC_VIDIOC_REQBUFS;
extern const unsigned long SOUNDLOC_VIDIOC_QUERYBUF;
extern const unsigned long SOUNDLOC_VIDIOC_QBUF;
extern const unsigned long SOUNDLOC_VIDIOC_DQBUF;
extern const unsigned long SOUNDLOC_VIDIOC_STREAMON;
extern const unsigned long SOUNDLOC_VIDIOC_STREAMOFF;
extern const unsigned long SOUNDLOC_VIDIOC_S_CTRL;

extern const uint32_t SOUNDLOC_V4L2_PIX_FMT_RGB24;
extern const uint32_t SOUNDLOC_V4L2_PIX_FMT_YUYV;
extern const uint32_t SOUNDLOC_V4L2_PIX_FMT_MJPEG;

/// ioctl on a plain file descriptor, repeated while interrupted by a signal. Returns -1 and sets errno on failure.
int soundloc_ioctl(int fd, unsigned long request, void *arg);

/// Loads libv4l2 (once, on first use); returns 1 when it is available. Without it the soundloc_v4l2_*
/// calls fall back to the plain system calls, so a camera offers only its native formats.
int soundloc_v4l2_available(void);
/// libv4l2's v4l2_fd_open: wraps an open V4L2 capture descriptor so that its formats are converted.
/// Returns fd, or -1 (the descriptor stays open and unwrapped).
int soundloc_v4l2_fd_open(int fd);
/// v4l2_close, v4l2_ioctl (repeated on EINTR), v4l2_mmap, v4l2_munmap, or their system-call twins.
int soundloc_v4l2_close(int fd);
int soundloc_v4l2_ioctl(int fd, unsigned long request, void *arg);
void *soundloc_v4l2_mmap(size_t length, int fd, int64_t offset);
int soundloc_v4l2_munmap(void *start, size_t length);

#ifdef __cplusplus
}
#endif

#endif  // __linux__
#endif
