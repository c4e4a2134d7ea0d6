/* daecl fuzzing — IDX files (MNIST family, plain or gzip) through the data
 * loaders; the harness is fuzz_data.h, the seeds corpus/idx/. */
#include "fuzz_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_data_one(data, size);
}
