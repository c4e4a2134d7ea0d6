/* daecl — strict UTF-8: no overlong forms, no surrogates, nothing past
 * U+10FFFF. One decoder for every place that checks or walks text: plugin
 * strings (core/registry.c), safetensors headers (core/safetensors.c) and
 * YAML written back (core/config_schema.c). */
#ifndef DAECL_CORE_UTF8_H
#define DAECL_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* The code point of the sequence at s (n bytes available, n >= 1) with its
 * length in *len, or -1 when it is not valid UTF-8 (*len untouched). */
long daecl_utf8_next(const unsigned char *s, size_t n, size_t *len);
/* The offset of the first byte of s[0..n) that is not valid UTF-8, or n. */
size_t daecl_utf8_valid_prefix(const void *s, size_t n);
/* Whether the NUL-terminated string is valid UTF-8. */
bool daecl_utf8_valid(const char *s);

#endif
