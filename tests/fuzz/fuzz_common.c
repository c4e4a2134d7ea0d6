/* daecl fuzzing — helpers shared by the fuzz targets (fuzz.h), in both the
 * libFuzzer build and the replay build. */
#include "fuzz.h"

#include <sys/mman.h>
#include <unistd.h>

int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t n_path)
{
    int fd = memfd_create("daecl-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t k = write(fd, data + done, size - done);
        if (k <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)k;
    }
    snprintf(path, n_path, "/proc/self/fd/%d", fd);
    return fd;
}
