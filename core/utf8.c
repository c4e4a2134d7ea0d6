/* daecl — strict UTF-8 (core/utf8.h). */
#include "core/utf8.h"

#include <string.h>

long daecl_utf8_next(const unsigned char *s, size_t n, size_t *len)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    size_t k;
    long cp;
    if (c < 0x80) {
        *len = 1;
        return (long)c;
    } else if (c >= 0xC2 && c <= 0xDF) {
        k = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3, cp = c & 0x0F;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlongs */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4, cp = c & 0x07;
        lo = c == 0xF0 ? 0x90 : 0x80; /* no overlongs */
        hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
    } else {
        return -1;
    }
    if (k > n)
        return -1;
    for (size_t i = 1; i < k; i++) {
        unsigned b = s[i]; /* a NUL fails here */
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            return -1;
        cp = cp << 6 | (long)(b & 0x3F);
    }
    *len = k;
    return cp;
}

size_t daecl_utf8_valid_prefix(const void *s, size_t n)
{
    const unsigned char *p = s;
    size_t i = 0, len;
    while (i < n && daecl_utf8_next(p + i, n - i, &len) >= 0)
        i += len;
    return i;
}

bool daecl_utf8_valid(const char *s)
{
    size_t n = strlen(s);
    return daecl_utf8_valid_prefix(s, n) == n;
}
