#ifndef CLIBFUZZER_SHIM_H
#define CLIBFUZZER_SHIM_H
#include <stddef.h>
#include <stdint.h>

// libFuzzer's driver (compiler-rt, LLVM >= 12), linked in by `-sanitize=fuzzer`. SwiftPM links
// executables with `main` aliased to the module's top-level code, so libFuzzer's own `main`
// never runs; the fuzz targets' top-level code starts the driver with this instead.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
