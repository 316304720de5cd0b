#include "soundloc_kernels.h"
