/* Number, size and duration parsing that rejects overflow, signs and
 * trailing junk (never atoi). All return 0 on success, -1 on bad input. */
#ifndef YUBIN_STRNUM_H
#define YUBIN_STRNUM_H

#include <stddef.h>
#include <stdint.h>

int str_to_uint64(const char *s, uint64_t *num_r);
int str_to_uint32(const char *s, uint32_t *num_r);
/* Parses a decimal prefix of at most len bytes: all len bytes must be digits. */
int strn_to_uint64(const char *s, size_t len, uint64_t *num_r);
/* "35M", "1G", "512k", "100" (bytes); units k/K, m/M, g/G, t/T are powers of 1024. */
int str_parse_size(const char *s, uint64_t *bytes_r);
/* "10m", "30d", "2s", "500ms", "1h", "1w"; a bare number is seconds. Result in ms. */
int str_parse_duration(const char *s, uint64_t *msecs_r);
/* The value of a hex digit (either case), or -1. */
int hex_digit_value(unsigned char c);
/* "yes/no/true/false/on/off/1/0" */
int str_parse_bool(const char *s, int *bool_r);

#endif
