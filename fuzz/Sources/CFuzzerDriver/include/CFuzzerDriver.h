// libFuzzer's driver, linked in by -sanitize=fuzzer (LLVM ≥ 12). SwiftPM links executables with
// main aliased to `<Target>_main`, which -parse-as-library never emits; each fuzz target defines
// that symbol itself and hands control to this driver (docs/testing.md).
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
