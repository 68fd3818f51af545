// LD_PRELOAD library for benchmarks/allocations_per_hit.sh: counts calls to malloc (operator new
// calls it too) and prints the count to stderr on SIGUSR2.
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern void* __libc_malloc(size_t size);
static atomic_long calls;

void* malloc(size_t size) {
  atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
  return __libc_malloc(size);
}

static void Report(int signal) {
  (void)signal;
  char line[64];
  const int length = snprintf(line, sizeof(line), "mallocs %ld\n", atomic_load(&calls));
  (void)write(2, line, (size_t)length);
}

__attribute__((constructor)) static void Install(void) { signal(SIGUSR2, Report); }
