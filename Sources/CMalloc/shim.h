// glibc's malloc extensions (malloc_trim), which Swift's Glibc module does not include:
// MemoryTrim.swift gives freed memory back to the system with it.
#include <malloc.h>
