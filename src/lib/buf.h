/* A growable byte buffer with a hard maximum size: it carries its length,
 * stays NUL-terminated, and refuses to grow past `max` (nothing grows just
 * because a peer sends more). */
#ifndef YUBIN_BUF_H
#define YUBIN_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;   /* always NUL-terminated once anything was added */
	size_t len;
	size_t cap;
	size_t max;   /* 0 = no limit (only for trusted, locally produced data) */
};

#define BUF_INIT(maxsize) { NULL, 0, 0, (maxsize) }

void buf_init(struct buf *buf, size_t max);
/* Returns -1 (leaving the buffer unchanged) when the result would exceed max. */
int buf_append(struct buf *buf, const void *data, size_t len);
int buf_append_str(struct buf *buf, const char *s);
int buf_append_char(struct buf *buf, char c);
int buf_printf(struct buf *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *buf, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* The contents as a C string ("" when empty). */
const char *buf_str(const struct buf *buf);
void buf_reset(struct buf *buf);
/* Drops the first n bytes. */
void buf_consume(struct buf *buf, size_t n);
/* Hands the malloc'd contents to the caller and leaves the buffer empty. */
char *buf_steal(struct buf *buf);
void buf_free(struct buf *buf);

#endif
