#pragma once
/// Always-on assertions for programmer errors (active in release builds too). Operating errors
/// (bad input, disk full) are handled with result codes and Status, never with these.

#include <cstdio>
#include <cstdlib>

#define POINTEX_ASSERT(cond)                                                            \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (false)
