// glibc ≥ 2.34 (Debian 12 has 2.36) declares this only under _GNU_SOURCE, which Swift's Glibc
// module is built without: declared here so that a spawned process gets no descriptor but the
// ones placed for it, even one another thread opens while it starts (ProcessLauncher.swift).
#include <spawn.h>

extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
