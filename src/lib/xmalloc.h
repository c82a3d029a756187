/* Allocation that never returns NULL: failure aborts the process (the master
 * restarts a worker), so no caller handles out-of-memory. */
#ifndef YUBIN_XMALLOC_H
#define YUBIN_XMALLOC_H

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
/* xreallocarray: realloc for count * size, aborting on overflow. */
void *xreallocarray(void *ptr, size_t count, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t len);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Frees *ptr and sets it to NULL; accepts NULL. */
#define xfree(ptr) do { free(ptr); (ptr) = NULL; } while (0)

#endif
