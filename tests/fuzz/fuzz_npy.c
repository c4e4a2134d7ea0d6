/* daecl fuzzing — NumPy .npy files (versions 1 to 3, their header dict)
 * through the data loaders; the harness is fuzz_data.h, the seeds
 * corpus/npy/. */
#include "fuzz_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_data_one(data, size);
}
