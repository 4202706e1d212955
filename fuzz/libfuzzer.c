/* libfuzzer.c — the libFuzzer entry point of one fuzz target: the DT_FUZZ build compiles it
 * once per target with FUZZ_HARNESS naming the harness (fuzz.h). */
#include "fuzz.h"

#ifndef FUZZ_HARNESS
#error "FUZZ_HARNESS names the harness function (dt_fuzz_...)"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return FUZZ_HARNESS(data, size);
}
