// zlib from the system (Debian: zlib1g-dev), for on-the-fly compression (docs/configuration.md §10).
#include <zlib.h>
