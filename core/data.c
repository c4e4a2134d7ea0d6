/* daecl — data sets: the IDX and .npy loaders behind core/data.h.
 * One reader (bytes in memory, a file, or a gzip stream over either) feeds
 * one header parser and one element converter, so loading a file and parsing
 * bytes in memory (the fuzzer's entry point) run exactly the same checks.
 * A file already stored as the float32 array is mapped instead of read
 * (map_prefix), after the same header and size checks. */
#define ZLIB_CONST
#include "core/data.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/error.h"
#include "core/log.h"
#include "core/toy.h"

enum {
    ZBUF_BYTES = 256 << 10,      /* compressed bytes per read() */
    STAGE_BYTES = 1 << 20,       /* stored element bytes converted per step */
    ZCHUNK_MAX = 1 << 30,        /* zlib counts in uInt: feed it at most this */
    NPY_HEADER_MAX = 1 << 16,    /* numpy itself refuses headers over 10,000 bytes */
    NPY_DESCR_MAX = 32,
    DEFLATE_MAX_RATIO = 1032,    /* deflate never expands one byte into more */
    MAX_DIMS = 5,                /* rows + 4 per-example dimensions */
    LABEL_MAX = 65535,
};

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_BIG_ENDIAN 1
#else
#define HOST_BIG_ENDIAN 0
#endif

/* ---- the reader ------------------------------------------------------- */

/* The "stored" bytes are the file as it lies on disk (or in memory); the
 * "logical" bytes are what the parser sees: the same, or the inflated gzip
 * stream. Every read asks for exactly what the parser needs, so a gzip file
 * is never inflated past the rows it was asked for. */
typedef struct reader {
    const char *name;
    const uint8_t *mem; /* stored bytes in memory, or NULL for fd */
    int fd;             /* -1 for memory */
    uint64_t size;      /* stored bytes in all (fstat, or the caller's count) */
    uint64_t taken;     /* stored bytes consumed (handed to zlib when gz) */
    uint64_t pos;       /* logical bytes delivered */
    int gz;
    int z_ready;        /* inflateInit2 done: inflateEnd owed */
    int z_end;          /* the last gzip member ended with no stored bytes left */
    z_stream zs;
    uint8_t *zbuf;      /* ZBUF_BYTES of compressed input, fd sources only */
} reader;

static int raw_read(reader *r, uint8_t *buf, size_t n, size_t *got, daecl_err *err)
{
    *got = 0;
    if (r->mem) {
        uint64_t left = r->size - r->taken;
        size_t k = left < n ? (size_t)left : n;
        if (k)
            memcpy(buf, r->mem + r->taken, k);
        r->taken += k;
        *got = k;
        return 0;
    }
    while (*got < n) {
        ssize_t k = read(r->fd, buf + *got, n - *got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return daecl_err_set(err, DAECL_EIO,
                                 "reading %s failed at byte %" PRIu64 " (%s); check the disk and the file",
                                 r->name, r->taken, strerror(errno));
        if (k == 0) {
            /* Shorter than fstat said (it shrank under us): believe read(). */
            r->size = r->taken;
            break;
        }
        *got += (size_t)k;
        r->taken += (uint64_t)k;
    }
    return 0;
}

/* Hands zlib the next stored bytes; avail_in stays 0 at the end. */
static int z_feed(reader *r, daecl_err *err)
{
    if (r->mem) {
        uint64_t left = r->size - r->taken;
        uInt k = left > ZCHUNK_MAX ? ZCHUNK_MAX : (uInt)left;
        r->zs.next_in = r->mem + r->taken;
        r->zs.avail_in = k;
        r->taken += k;
        return 0;
    }
    size_t got;
    int rc = raw_read(r, r->zbuf, ZBUF_BYTES, &got, err);
    r->zs.next_in = r->zbuf;
    r->zs.avail_in = (uInt)got;
    return rc;
}

/* Reads up to n logical bytes; *got < n only at the end of the data. */
static int rd_read(reader *r, void *buf, size_t n, size_t *got, daecl_err *err)
{
    if (!r->gz) {
        int rc = raw_read(r, buf, n, got, err);
        r->pos += *got;
        return rc;
    }
    *got = 0;
    while (*got < n && !r->z_end) {
        if (r->zs.avail_in == 0 && r->taken < r->size) {
            int rc = z_feed(r, err);
            if (rc)
                return rc;
        }
        size_t want = n - *got < ZCHUNK_MAX ? n - *got : ZCHUNK_MAX;
        r->zs.next_out = (Bytef *)buf + *got;
        r->zs.avail_out = (uInt)want;
        int zr = inflate(&r->zs, Z_NO_FLUSH);
        size_t made = want - r->zs.avail_out;
        *got += made;
        r->pos += made;
        if (zr == Z_STREAM_END) {
            if (r->zs.avail_in == 0 && r->taken >= r->size)
                r->z_end = 1;
            else
                inflateReset(&r->zs); /* another gzip member follows, as gunzip reads it */
            continue;
        }
        if (zr == Z_OK)
            continue;
        if (zr == Z_BUF_ERROR && r->zs.avail_in == 0 && r->taken >= r->size)
            return daecl_err_set(err, DAECL_EDATA,
                                 "%s is a truncated gzip file: its compressed stream stops after %" PRIu64
                                 " bytes without its end marker; fetch the file again",
                                 r->name, r->taken);
        if (zr == Z_BUF_ERROR)
            continue; /* more stored input comes with the next z_feed */
        return daecl_err_set(err, zr == Z_MEM_ERROR ? DAECL_ENOMEM : DAECL_EDATA,
                             "%s is not valid gzip data (zlib: %s, near compressed byte %" PRIu64
                             "); fetch the file again",
                             r->name, r->zs.msg ? r->zs.msg : zError(zr),
                             r->taken - r->zs.avail_in);
    }
    return 0;
}

/* Detects gzip from the first two stored bytes and readies zlib. */
static int rd_start(reader *r, daecl_err *err)
{
    uint8_t m[2] = {0, 0};
    size_t n = 0;
    if (r->mem) {
        n = r->size < 2 ? (size_t)r->size : 2;
        memcpy(m, r->mem, n);
    } else {
        while (n < 2) {
            ssize_t k = pread(r->fd, m + n, 2 - n, (off_t)n);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return daecl_err_set(err, DAECL_EIO, "reading %s failed (%s); check the disk and the file",
                                     r->name, strerror(errno));
            if (k == 0)
                break;
            n += (size_t)k;
        }
    }
    if (n < 2 || m[0] != 0x1f || m[1] != 0x8b)
        return 0;
    r->gz = 1;
    if (!r->mem && !(r->zbuf = malloc(ZBUF_BYTES)))
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory opening the gzip stream of %s", r->name);
    /* 16 + MAX_WBITS: gzip wrapper only, so the CRC and length trailer is checked. */
    int zr = inflateInit2(&r->zs, 16 + MAX_WBITS);
    if (zr != Z_OK)
        return daecl_err_set(err, DAECL_ENOMEM, "zlib could not start inflating %s (%s)", r->name,
                             zError(zr));
    r->z_ready = 1;
    return 0;
}

static void rd_close(reader *r)
{
    if (r->z_ready)
        inflateEnd(&r->zs);
    free(r->zbuf);
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->zbuf = NULL;
    r->z_ready = 0;
}

static int rd_open_mem(reader *r, const void *bytes, size_t n, const char *name, daecl_err *err)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->name = name ? name : "<memory>";
    r->mem = n ? bytes : (const uint8_t *)"";
    r->size = n;
    return rd_start(r, err);
}

static int rd_open_file(reader *r, const char *path, daecl_err *err)
{
    memset(r, 0, sizeof *r);
    r->name = path;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return daecl_err_set(err, errno == ENOENT ? DAECL_ENOENT : DAECL_EIO,
                             "cannot open data file %s (%s); check the path", path, strerror(errno));
    struct stat st;
    if (fstat(r->fd, &st) != 0)
        return daecl_err_set(err, DAECL_EIO, "cannot stat data file %s (%s)", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return daecl_err_set(err, DAECL_EINVAL, "%s is a folder, not a data file; name the IDX or .npy file in it",
                             path);
    /* The size checks below need the stored size up front, which pipes lack. */
    if (!S_ISREG(st.st_mode))
        return daecl_err_set(err, DAECL_ENOTSUP,
                             "%s is not a regular file; daecl reads data sets from regular files only", path);
    r->size = (uint64_t)st.st_size;
    return rd_start(r, err);
}

/* ---- layouts ---------------------------------------------------------- */

typedef enum elem { E_OTHER, E_U8, E_I8, E_I16, E_I32, E_I64, E_F32, E_F64 } elem;

static const char *elem_name(elem e)
{
    switch (e) {
    case E_U8: return "uint8";
    case E_I8: return "int8";
    case E_I16: return "int16";
    case E_I32: return "int32";
    case E_I64: return "int64";
    case E_F32: return "float32";
    case E_F64: return "float64";
    case E_OTHER: break;
    }
    return "unknown";
}

/* What a header says: element type and order, dimensions, where data starts. */
typedef struct layout {
    const char *format;    /* "IDX" or ".npy" */
    elem type;
    int swap;              /* the file's byte order is not the host's */
    int fortran;           /* .npy fortran_order True (harmless in 1-D) */
    size_t elem_bytes;
    uint32_t ndim;
    uint64_t dims[MAX_DIMS];
    uint64_t header_bytes; /* logical bytes before the first element */
    uint64_t n_rows, dim;  /* dims[0], and the product of the rest (1 for 1-D) */
    uint64_t data_bytes;   /* n_rows * dim * elem_bytes */
    char type_name[64];    /* "int16 (IDX type 0x0B)", "int16 (dtype '<i2')" */
} layout;

/* "(60000, 28, 28)", "(60000,)", as numpy prints shapes. */
static const char *shape_str(const layout *L, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "(");
    for (uint32_t i = 0; i < L->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%" PRIu64, i ? ", " : "", L->dims[i]);
    if (k < n)
        snprintf(buf + k, n - k, "%s)", L->ndim == 1 ? "," : "");
    return buf;
}

static int truncated_header(const reader *r, const layout *L, uint64_t need, daecl_err *err)
{
    return daecl_err_set(err, DAECL_EDATA,
                         "%s ends after %" PRIu64 " bytes, inside its %" PRIu64
                         "-byte %s header; the file is truncated, fetch it again",
                         r->name, r->pos, need, L->format);
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static elem idx_elem(uint8_t t)
{
    switch (t) {
    case 0x08: return E_U8;
    case 0x09: return E_I8;
    case 0x0B: return E_I16;
    case 0x0C: return E_I32;
    case 0x0D: return E_F32;
    case 0x0E: return E_F64;
    }
    return E_OTHER;
}

static size_t elem_size(elem e)
{
    switch (e) {
    case E_U8: case E_I8: return 1;
    case E_I16: return 2;
    case E_I32: case E_F32: return 4;
    case E_I64: case E_F64: return 8;
    case E_OTHER: break;
    }
    return 0;
}

/* The 4-byte magic is read; m[2] is a known type, m[3] the dimension count. */
static int read_idx(reader *r, layout *L, const uint8_t *m, daecl_err *err)
{
    L->format = "IDX";
    L->type = idx_elem(m[2]);
    L->elem_bytes = elem_size(L->type);
    L->swap = !HOST_BIG_ENDIAN; /* IDX is big-endian throughout */
    snprintf(L->type_name, sizeof L->type_name, "%s (IDX type 0x%02X)", elem_name(L->type), m[2]);
    if (m[3] == 0)
        return daecl_err_set(err, DAECL_EDATA, "%s is an IDX file that declares 0 dimensions; the header is corrupt",
                             r->name);
    if (m[3] > MAX_DIMS)
        return daecl_err_set(err, DAECL_ENOTSUP,
                             "%s is an IDX file with %u dimensions; daecl reads rows of at most 4 dimensions "
                             "(5 in all)",
                             r->name, m[3]);
    L->ndim = m[3];
    L->header_bytes = 4 + 4 * (uint64_t)L->ndim;
    if (!r->gz && L->header_bytes > r->size)
        return daecl_err_set(err, DAECL_EDATA,
                             "%s is %" PRIu64 " bytes long, shorter than its own %" PRIu64
                             "-byte IDX header (%u dimensions); the file is truncated, fetch it again",
                             r->name, r->size, L->header_bytes, L->ndim);
    uint8_t d[4 * MAX_DIMS];
    size_t got;
    int rc = rd_read(r, d, 4 * (size_t)L->ndim, &got, err);
    if (rc)
        return rc;
    if (got < 4 * (size_t)L->ndim)
        return truncated_header(r, L, L->header_bytes, err);
    for (uint32_t i = 0; i < L->ndim; i++)
        L->dims[i] = be32(d + 4 * i);
    return 0;
}

/* ---- .npy header: a Python dict literal, untrusted ---------------------- */

typedef struct npy_hdr {
    char descr[NPY_DESCR_MAX];
    int fortran;
    uint32_t ndim;
    uint64_t dims[MAX_DIMS];
    unsigned seen; /* 1 descr, 2 fortran_order, 4 shape */
} npy_hdr;

typedef struct scan {
    const char *s;
    size_t n, i;
    uint64_t base; /* file offset of s[0], for messages */
    const char *name;
    daecl_err *err;
} scan;

static void skip_ws(scan *c)
{
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        c->i++;
}

static int no_brace(scan *c)
{
    return daecl_err_set(c->err, DAECL_EDATA,
                         "%s has a .npy header without a closing brace '}'; the file is truncated or corrupt",
                         c->name);
}

static int malformed(scan *c, const char *what)
{
    return daecl_err_set(c->err, DAECL_EDATA,
                         "%s has a malformed .npy header at byte %" PRIu64
                         " (%s); the file is corrupt or was not written by numpy.save",
                         c->name, c->base + c->i, what);
}

static int expect(scan *c, char ch, const char *what)
{
    skip_ws(c);
    if (c->i >= c->n)
        return no_brace(c);
    if (c->s[c->i] != ch)
        return malformed(c, what);
    c->i++;
    return 0;
}

/* A quoted string without escapes (numpy never writes any in these fields). */
static int scan_str(scan *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->i >= c->n)
        return no_brace(c);
    char q = c->s[c->i];
    if (q != '\'' && q != '"')
        return malformed(c, "expected a quoted string");
    c->i++;
    size_t k = 0;
    while (c->i < c->n && c->s[c->i] != q) {
        unsigned char ch = (unsigned char)c->s[c->i];
        if (ch == '\\' || ch < 0x20 || ch >= 0x7f)
            return malformed(c, "unexpected character in a string");
        if (k + 1 >= cap)
            return malformed(c, "string too long");
        out[k++] = (char)ch;
        c->i++;
    }
    if (c->i >= c->n)
        return no_brace(c);
    c->i++;
    out[k] = '\0';
    return 0;
}

static int is_word_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
           ch == '.';
}

static int scan_bool(scan *c, int *out)
{
    skip_ws(c);
    size_t start = c->i;
    while (c->i < c->n && is_word_char(c->s[c->i]))
        c->i++;
    size_t len = c->i - start;
    if (c->i >= c->n)
        return no_brace(c);
    if (len == 4 && memcmp(c->s + start, "True", 4) == 0)
        *out = 1;
    else if (len == 5 && memcmp(c->s + start, "False", 5) == 0)
        *out = 0;
    else {
        c->i = start;
        return malformed(c, "fortran_order is neither True nor False");
    }
    return 0;
}

/* "(60000, 784)", "(5,)", "()", with Python 2's "60000L" accepted. */
static int scan_shape(scan *c, npy_hdr *h)
{
    int rc = expect(c, '(', "expected '(' to open the shape");
    if (rc)
        return rc;
    h->ndim = 0;
    for (;;) {
        skip_ws(c);
        if (c->i >= c->n)
            return no_brace(c);
        if (c->s[c->i] == ')') {
            c->i++;
            return 0;
        }
        if (c->s[c->i] == '-')
            return daecl_err_set(c->err, DAECL_EDATA,
                                 "%s has a negative entry in the shape of its .npy header (byte %" PRIu64
                                 "); the header is corrupt",
                                 c->name, c->base + c->i);
        size_t start = c->i;
        uint64_t v = 0;
        while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
            unsigned dgt = (unsigned)(c->s[c->i] - '0');
            /* numpy shapes are intp: anything past 2^63 is a lie, not a shape. */
            if (v > ((uint64_t)INT64_MAX - dgt) / 10)
                return daecl_err_set(c->err, DAECL_EDATA,
                                     "%s has a shape entry larger than 2^63 in its .npy header (byte %" PRIu64
                                     "); the header is corrupt",
                                     c->name, c->base + start);
            v = v * 10 + dgt;
            c->i++;
        }
        if (c->i < c->n && (c->s[c->i] == 'L' || c->s[c->i] == 'l'))
            c->i++;
        if (c->i == start || (c->i < c->n && is_word_char(c->s[c->i])))
            return daecl_err_set(c->err, DAECL_EDATA,
                                 "%s has a non-integer entry in the shape of its .npy header (byte %" PRIu64
                                 "); the header is corrupt",
                                 c->name, c->base + start);
        if (h->ndim == MAX_DIMS)
            return daecl_err_set(c->err, DAECL_ENOTSUP,
                                 "%s has more than %d dimensions; daecl reads rows of at most 4 dimensions", c->name,
                                 MAX_DIMS);
        h->dims[h->ndim++] = v;
        skip_ws(c);
        if (c->i >= c->n)
            return no_brace(c);
        if (c->s[c->i] == ',')
            c->i++;
        else if (c->s[c->i] != ')')
            return malformed(c, "expected ',' or ')' in the shape");
    }
}

static int scan_dict(scan *c, npy_hdr *h)
{
    int rc = expect(c, '{', "expected '{' to open the header dict");
    if (rc)
        return rc;
    for (;;) {
        skip_ws(c);
        if (c->i >= c->n)
            return no_brace(c);
        if (c->s[c->i] == '}') {
            c->i++;
            break;
        }
        char key[32];
        size_t key_at = c->i;
        if ((rc = scan_str(c, key, sizeof key)))
            return rc;
        if ((rc = expect(c, ':', "expected ':' after a key")))
            return rc;
        unsigned bit = strcmp(key, "descr") == 0           ? 1u
                       : strcmp(key, "fortran_order") == 0 ? 2u
                       : strcmp(key, "shape") == 0         ? 4u
                                                           : 0u;
        if (bit == 0 || (h->seen & bit)) {
            c->i = key_at;
            return malformed(c, bit ? "a key appears twice" : "unknown key");
        }
        h->seen |= bit;
        if (bit == 1) {
            skip_ws(c);
            if (c->i < c->n && c->s[c->i] == '[')
                return daecl_err_set(c->err, DAECL_ENOTSUP,
                                     "%s holds a structured dtype; daecl reads plain arrays of one numeric type",
                                     c->name);
            rc = scan_str(c, h->descr, sizeof h->descr);
        } else if (bit == 2) {
            rc = scan_bool(c, &h->fortran);
        } else {
            rc = scan_shape(c, h);
        }
        if (rc)
            return rc;
        skip_ws(c);
        if (c->i >= c->n)
            return no_brace(c);
        if (c->s[c->i] == ',')
            c->i++;
        else if (c->s[c->i] != '}')
            return malformed(c, "expected ',' or '}' after a value");
    }
    skip_ws(c);
    if (c->i < c->n)
        return malformed(c, "bytes after the closing brace");
    if (h->seen != 7)
        return daecl_err_set(c->err, DAECL_EDATA,
                             "%s has a .npy header without '%s'; the file is corrupt or was not written by numpy.save",
                             c->name, !(h->seen & 1) ? "descr" : !(h->seen & 2) ? "fortran_order" : "shape");
    return 0;
}

/* "<f4" and friends; anything else stays E_OTHER, named in type_name. */
static void npy_elem(const char *d, layout *L)
{
    L->type = E_OTHER;
    snprintf(L->type_name, sizeof L->type_name, "dtype '%s'", d);
    char bo = d[0];
    if (bo != '<' && bo != '>' && bo != '|' && bo != '=')
        return;
    char t = d[1];
    const char *p = d + 2;
    if (!*p || strlen(p) > 2 || p[0] < '1' || p[0] > '9' || (p[1] && (p[1] < '0' || p[1] > '9')))
        return;
    int size = atoi(p);
    elem e = E_OTHER;
    if (t == 'f' && size == 4)
        e = E_F32;
    else if (t == 'f' && size == 8)
        e = E_F64;
    else if (t == 'u' && size == 1)
        e = E_U8;
    else if (t == 'i' && size == 1)
        e = E_I8;
    else if (t == 'i' && size == 2)
        e = E_I16;
    else if (t == 'i' && size == 4)
        e = E_I32;
    else if (t == 'i' && size == 8)
        e = E_I64;
    if (e == E_OTHER || (bo == '|' && size != 1))
        return;
    L->type = e;
    L->elem_bytes = (size_t)size;
    L->swap = size > 1 && ((bo == '>' && !HOST_BIG_ENDIAN) || (bo == '<' && HOST_BIG_ENDIAN));
    snprintf(L->type_name, sizeof L->type_name, "%s (dtype '%s')", elem_name(e), d);
}

/* The 4 bytes "\x93NUM" are read. */
static int read_npy(reader *r, layout *L, const uint8_t *m4, daecl_err *err)
{
    L->format = ".npy";
    uint8_t m[12];
    memcpy(m, m4, 4);
    size_t got;
    int rc = rd_read(r, m + 4, 6, &got, err);
    if (rc)
        return rc;
    if (got >= 2 && (m[4] != 'P' || m[5] != 'Y'))
        return daecl_err_set(err, DAECL_EDATA,
                             "%s is neither an IDX nor a .npy file (first bytes %02x %02x %02x %02x %02x %02x); "
                             "daecl reads MNIST-style IDX (optionally gzip'd) and NumPy .npy files",
                             r->name, m[0], m[1], m[2], m[3], m[4], m[5]);
    if (got < 6)
        return truncated_header(r, L, 10, err);
    if (m[6] < 1 || m[6] > 3)
        return daecl_err_set(err, DAECL_ENOTSUP,
                             "%s is a .npy file of format version %u.%u, which daecl does not read (it reads 1.0, "
                             "2.0 and 3.0); save it again with numpy.save",
                             r->name, m[6], m[7]);
    uint64_t pre = 10, hlen = (uint64_t)m[8] | (uint64_t)m[9] << 8;
    if (m[6] >= 2) {
        pre = 12;
        if ((rc = rd_read(r, m + 10, 2, &got, err)))
            return rc;
        if (got < 2)
            return truncated_header(r, L, 12, err);
        hlen |= (uint64_t)m[10] << 16 | (uint64_t)m[11] << 24;
    }
    L->header_bytes = pre + hlen;
    if (!r->gz && L->header_bytes > r->size)
        return daecl_err_set(err, DAECL_EDATA,
                             "%s declares a .npy header of %" PRIu64 " bytes but holds only %" PRIu64
                             " bytes after the preamble; the file is truncated or corrupt",
                             r->name, hlen, r->size - pre);
    if (hlen > NPY_HEADER_MAX)
        return daecl_err_set(err, DAECL_EDATA,
                             "%s declares a .npy header of %" PRIu64
                             " bytes, more than the %d daecl accepts; numpy.save writes short headers, so the file "
                             "is corrupt",
                             r->name, hlen, NPY_HEADER_MAX);
    char *text = malloc(hlen ? (size_t)hlen : 1);
    if (!text)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory reading the .npy header of %s", r->name);
    rc = rd_read(r, text, (size_t)hlen, &got, err);
    if (!rc && got < hlen)
        rc = truncated_header(r, L, L->header_bytes, err);
    npy_hdr h = {0};
    if (!rc) {
        scan c = {.s = text, .n = (size_t)hlen, .base = pre, .name = r->name, .err = err};
        rc = scan_dict(&c, &h);
    }
    free(text);
    if (rc)
        return rc;
    if (h.ndim == 0)
        return daecl_err_set(err, DAECL_EDATA,
                             "%s holds a single scalar (shape ()), not rows of examples; save a 1-D or 2-D array",
                             r->name);
    L->ndim = h.ndim;
    memcpy(L->dims, h.dims, sizeof h.dims);
    /* With at most one dimension above 1, Fortran and C order lie alike. */
    uint32_t big = 0;
    for (uint32_t i = 0; i < h.ndim; i++)
        big += h.dims[i] > 1;
    if (h.fortran && big > 1)
        return daecl_err_set(err, DAECL_ENOTSUP,
                             "%s is stored in Fortran order; save it with numpy.ascontiguousarray(a) first",
                             r->name);
    L->fortran = h.fortran;
    npy_elem(h.descr, L);
    return 0;
}

static int read_header(reader *r, layout *L, daecl_err *err)
{
    memset(L, 0, sizeof *L);
    uint8_t m[4];
    size_t got;
    int rc = rd_read(r, m, 4, &got, err);
    if (rc)
        return rc;
    if (got == 0)
        return daecl_err_set(err, DAECL_EDATA,
                             "%s is empty; daecl reads MNIST-style IDX (optionally gzip'd) and NumPy .npy files",
                             r->name);
    if (got >= 3 && m[0] == 0 && m[1] == 0 && idx_elem(m[2]) != E_OTHER) {
        if (got < 4) {
            L->format = "IDX";
            return truncated_header(r, L, 4, err);
        }
        return read_idx(r, L, m, err);
    }
    if (got == 4 && memcmp(m, "\x93NUM", 4) == 0)
        return read_npy(r, L, m, err);
    char hex[16] = "";
    for (size_t i = 0; i < got; i++)
        snprintf(hex + 3 * i, sizeof hex - 3 * i, "%02x ", m[i]);
    hex[3 * got - 1] = '\0';
    return daecl_err_set(err, DAECL_EDATA,
                         "%s is neither an IDX nor a .npy file (first bytes %s%s); daecl reads MNIST-style IDX "
                         "(optionally gzip'd) and NumPy .npy files",
                         r->name, hex + 0, r->gz ? " after gunzip" : "");
}

/* Rows, dim and byte counts, each checked for overflow. */
static int layout_sizes(const reader *r, layout *L, daecl_err *err)
{
    char shape[160];
    uint64_t dim = 1, n_elems, bytes, total;
    int over = 0;
    for (uint32_t i = 1; i < L->ndim; i++)
        over |= __builtin_mul_overflow(dim, L->dims[i], &dim);
    over |= __builtin_mul_overflow(L->dims[0], dim, &n_elems);
    over |= __builtin_mul_overflow(n_elems, (uint64_t)L->elem_bytes, &bytes);
    over |= __builtin_add_overflow(bytes, L->header_bytes, &total);
    over |= n_elems > SIZE_MAX;
    if (over)
        return daecl_err_set(err, DAECL_EDATA,
                             "%s declares shape %s, whose size overflows 64 bits; the header is corrupt", r->name,
                             shape_str(L, shape, sizeof shape));
    L->n_rows = L->dims[0];
    L->dim = dim;
    L->data_bytes = bytes;
    return 0;
}

/* For stored-plain sources, the sizes against the bytes the file holds,
 * before anything is read. Called after the checks the header alone
 * allows, so a plain file and its gzip'd copy (whose size is known only
 * as it inflates) are refused for the same reason. */
static int stored_size(const reader *r, const layout *L, daecl_err *err)
{
    char shape[160];
    uint64_t total = L->data_bytes + L->header_bytes; /* no overflow: layout_sizes */
    if (r->gz)
        return 0;
    if (total > r->size)
        return daecl_err_set(err, DAECL_EDATA,
                             "%s is truncated: its header declares shape %s of %s (%" PRIu64
                             " bytes of data) but only %" PRIu64 " bytes follow the %" PRIu64
                             "-byte header; fetch the file again",
                             r->name, shape_str(L, shape, sizeof shape), elem_name(L->type),
                             L->data_bytes, r->size - L->header_bytes, L->header_bytes);
    if (total < r->size)
        return daecl_err_set(err, DAECL_EDATA,
                             "%s has %" PRIu64 " bytes after the data its header declares (shape %s of %s); the "
                             "header or the file is wrong",
                             r->name, r->size - total, shape_str(L, shape, sizeof shape), elem_name(L->type));
    return 0;
}

/* Reads k whole elements into stage; a short read here means the (gzip)
 * stream ended before the data its header declares. */
static int read_elems(reader *r, const layout *L, uint8_t *stage, size_t k, daecl_err *err)
{
    size_t want = k * L->elem_bytes, got;
    int rc = rd_read(r, stage, want, &got, err);
    if (rc)
        return rc;
    if (got < want)
        return daecl_err_set(err, DAECL_EDATA,
                             "%s ends early: it holds %" PRIu64 " bytes of data after its %" PRIu64
                             "-byte header, but the header declares %" PRIu64 "; fetch the file again",
                             r->name, r->pos - L->header_bytes, L->header_bytes, L->data_bytes);
    return 0;
}

/* After all declared data of a gzip stream: the stream must end there (this
 * also makes zlib check the CRC). Plain sources were checked by size. */
static int check_end(reader *r, const layout *L, uint8_t *stage, daecl_err *err)
{
    if (!r->gz)
        return 0;
    uint64_t extra = 0;
    size_t got;
    do {
        int rc = rd_read(r, stage, STAGE_BYTES, &got, err);
        if (rc)
            return rc;
        extra += got;
    } while (got == STAGE_BYTES);
    if (extra) {
        char shape[160];
        return daecl_err_set(err, DAECL_EDATA,
                             "%s has %" PRIu64 " bytes after the data its header declares (shape %s of %s); the "
                             "header or the file is wrong",
                             r->name, extra, shape_str(L, shape, sizeof shape), elem_name(L->type));
    }
    return 0;
}

static uint64_t load_u64(const uint8_t *p, size_t n, int swap)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = swap ? p[n - 1 - i] : p[i];
    if (n == 4) {
        uint32_t v;
        memcpy(&v, b, 4);
        return v;
    }
    uint64_t v;
    memcpy(&v, b, 8);
    return v;
}

/* ---- data sets -------------------------------------------------------- */

/* Converts k stored elements to float into x; *bad gets the index of the
 * first value that is not a finite float32 (k when all are). */
static void convert_f(const layout *L, const uint8_t *src, size_t k, const float *lut, float *x, size_t *bad)
{
    *bad = k;
    if (L->type == E_U8) {
        for (size_t i = 0; i < k; i++)
            x[i] = lut[src[i]];
        return;
    }
    if (L->type == E_F32) {
        if (L->swap) {
            for (size_t i = 0; i < k; i++) {
                uint32_t v = (uint32_t)load_u64(src + 4 * i, 4, 1);
                memcpy(&x[i], &v, 4);
            }
        } else {
            memcpy(x, src, 4 * k);
        }
        for (size_t i = 0; i < k; i++)
            if (!isfinite(x[i])) {
                *bad = i;
                return;
            }
        return;
    }
    for (size_t i = 0; i < k; i++) { /* E_F64 */
        uint64_t v = load_u64(src + 8 * i, 8, L->swap);
        double d;
        memcpy(&d, &v, 8);
        if (!isfinite(d) || fabs(d) > FLT_MAX) {
            x[i] = 0.0f;
            *bad = i;
            return;
        }
        x[i] = (float)d;
    }
}

static int not_finite(const reader *r, double v, size_t at, size_t dim, daecl_err *err)
{
    return daecl_err_set(err, DAECL_EDATA,
                         "%s holds %g at row %zu, column %zu, which is not a finite float32; daecl trains on "
                         "finite values only, so clean the data first",
                         r->name, v, at / dim, at % dim);
}

/* Whether the stored bytes already are the array: a plain regular file (not
 * gzip, not memory), float32 in the host's order and C order, the data at a
 * multiple of 4 bytes so that every float is aligned. numpy.save pads its
 * header to 16 (old) or 64 bytes, so its files qualify. */
static int mappable(const reader *r, const layout *L)
{
    return r->fd >= 0 && !r->gz && L->type == E_F32 && !L->swap && !L->fortran &&
           L->header_bytes % sizeof(float) == 0;
}

/* Maps the header and the first n floats of a mappable file, from offset 0
 * (mmap offsets must be page-aligned; the header's length is not), and
 * points ds->x past the header. Returns 0 when the kernel refuses, leaving
 * ds as it was, and the caller reads the file instead. */
static int map_prefix(const reader *r, const layout *L, size_t n, daecl_dataset *ds)
{
    uint64_t len = L->header_bytes + (uint64_t)n * sizeof(float); /* <= the file: stored_size */
    if (len > SIZE_MAX)
        return 0;
    void *base = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, r->fd, 0);
    if (base == MAP_FAILED) {
        daecl_log(DAECL_LOG_DEBUG, NULL, "cannot map %s (%s); reading it instead", r->name, strerror(errno));
        return 0;
    }
    /* The file may have shrunk since fstat; a page past its end would raise
     * SIGBUS on first touch, so read it instead and let read() tell. */
    struct stat st;
    if (fstat(r->fd, &st) != 0 || (uint64_t)st.st_size < len) {
        munmap(base, (size_t)len);
        return 0;
    }
    ds->map_base = base;
    ds->map_bytes = (size_t)len;
    ds->mapped = 1;
    ds->x = (const float *)(const void *)((const uint8_t *)base + L->header_bytes);
    return 1;
}

/* The checks convert_f and load_dataset give read float32 values, over a
 * mapping: every value finite, and the min and max. O(n), touching each
 * page once (which also brings the file into the page cache). */
static int scan_mapped(const reader *r, daecl_dataset *ds, size_t n, daecl_err *err)
{
    const float *x = ds->x;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < STAGE_BYTES / sizeof(float) ? n - done : STAGE_BYTES / sizeof(float);
        for (size_t i = done; i < done + k; i++)
            if (!isfinite(x[i]))
                return not_finite(r, x[i], i, ds->dim, err);
        for (size_t i = done; i < done + k; i++) {
            lo = x[i] < lo ? x[i] : lo;
            hi = x[i] > hi ? x[i] : hi;
        }
        done += k;
    }
    ds->min = lo;
    ds->max = hi;
    return 0;
}

static int load_dataset(reader *r, size_t limit, uint64_t max_bytes, daecl_dataset **out, daecl_err *err)
{
    layout L;
    char shape[160];
    uint8_t *stage = NULL;
    float *x = NULL; /* the loaded array, as ds->x; never a mapping */
    daecl_dataset *ds = NULL;
    int rc = read_header(r, &L, err);
    if (rc)
        return rc;
    if (L.type != E_U8 && L.type != E_F32 && L.type != E_F64)
        return daecl_err_set(err, DAECL_ENOTSUP,
                             "%s holds %s values; daecl reads data stored as uint8, float32 or float64, so convert "
                             "it first (e.g. numpy.save(path, a.astype(numpy.float32)))",
                             r->name, L.type_name);
    if ((rc = layout_sizes(r, &L, err)))
        return rc;
    if (L.n_rows == 0 || L.dim == 0)
        return daecl_err_set(err, DAECL_EDATA, "%s has shape %s: it holds no %s; a data set needs at least one value",
                             r->name, shape_str(&L, shape, sizeof shape), L.n_rows == 0 ? "rows" : "values per row");
    for (uint32_t i = 1; i < L.ndim; i++)
        if (L.dims[i] > UINT32_MAX)
            return daecl_err_set(err, DAECL_ENOTSUP,
                                 "%s has shape %s; daecl keeps per-example dimensions below 2^32, so reshape it",
                                 r->name, shape_str(&L, shape, sizeof shape));
    if ((rc = stored_size(r, &L, err)))
        return rc;
    size_t rows = limit && limit < L.n_rows ? limit : (size_t)L.n_rows;
    size_t n = rows * (size_t)L.dim; /* <= the element count, checked above */
    uint64_t x_bytes;
    if (max_bytes == 0)
        max_bytes = DAECL_DATA_MAX_BYTES_DEFAULT;
    if (__builtin_mul_overflow((uint64_t)n, (uint64_t)sizeof(float), &x_bytes))
        x_bytes = UINT64_MAX;
    /* MiB, rounded up so that the value the message suggests suffices */
    double mb = (double)x_bytes / 1048576.0;
    mb = mb >= 1 ? ceil(mb) : ceil(mb * 1e6) / 1e6;
    /* Mapped data are bounded too: the bound is on the data set, and a
     * mapping's pages still take the node's memory as they are read. */
    if (x_bytes > max_bytes)
        return daecl_err_set(err, DAECL_ENOMEM,
                             "%s needs %" PRIu64 " bytes as float32 (%zu rows of %" PRIu64
                             " values), more than the limit of %" PRIu64
                             " bytes; raise the limit (data.max_mb, in MiB) to at least %" PRIu64
                             " bytes (data.max_mb=%.*f) or load fewer rows (data.train_limit, "
                             "data.test_limit)",
                             r->name, x_bytes, rows, L.dim, max_bytes, x_bytes, mb >= 1 ? 0 : 6, mb);

    if (!(ds = calloc(1, sizeof *ds)))
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory loading %s", r->name);
    ds->n_rows = rows;
    ds->dim = (size_t)L.dim;
    ds->n_shape = L.ndim - 1;
    for (uint32_t i = 1; i < L.ndim; i++)
        ds->shape[i - 1] = (uint32_t)L.dims[i]; /* checked below 2^32 above */
    if (ds->n_shape == 0) {
        ds->n_shape = 1;
        ds->shape[0] = 1;
    }
    ds->from_uint8 = L.type == E_U8;
    if (mappable(r, &L) && map_prefix(r, &L, n, ds)) {
        if ((rc = scan_mapped(r, ds, n, err)))
            goto fail;
        *out = ds;
        return 0;
    }

    /* A gzip header may lie about its size: allocate no more than the
     * compressed bytes could inflate to, and grow if that was too little. */
    size_t cap = n;
    if (r->gz && r->size < (UINT64_MAX - STAGE_BYTES) / DEFLATE_MAX_RATIO) {
        uint64_t bound = (r->size * DEFLATE_MAX_RATIO + STAGE_BYTES) / L.elem_bytes;
        if (bound < cap)
            cap = (size_t)bound;
    }
    if (!(ds->x = x = malloc(cap * sizeof(float))) || !(stage = malloc(STAGE_BYTES))) {
        rc = daecl_err_set(err, DAECL_ENOMEM,
                           "out of memory allocating %" PRIu64 " bytes for %s; free memory or load fewer rows "
                           "(data.train_limit, data.test_limit)",
                           (uint64_t)cap * sizeof(float), r->name);
        goto fail;
    }

    float lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = (float)v / 255.0f; /* the bits numpy's x.astype(np.float32) / 255 gives */
    uint8_t lo8 = 255, hi8 = 0;
    float lo = INFINITY, hi = -INFINITY;
    size_t per = STAGE_BYTES / L.elem_bytes;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < per ? n - done : per;
        if (done + k > cap) {
            size_t ncap = cap > n / 2 ? n : 2 * cap;
            float *nx = realloc(x, ncap * sizeof(float));
            if (!nx) {
                rc = daecl_err_set(err, DAECL_ENOMEM,
                                   "out of memory growing the array for %s to %zu bytes; free memory or load fewer "
                                   "rows (data.train_limit, data.test_limit)",
                                   r->name, ncap * sizeof(float));
                goto fail;
            }
            ds->x = x = nx;
            cap = ncap;
        }
        if ((rc = read_elems(r, &L, stage, k, err)))
            goto fail;
        size_t bad;
        convert_f(&L, stage, k, lut, x + done, &bad);
        if (bad < k) {
            double v;
            if (L.type == E_F32)
                v = x[done + bad];
            else {
                uint64_t u = load_u64(stage + 8 * bad, 8, L.swap);
                memcpy(&v, &u, 8);
            }
            rc = not_finite(r, v, done + bad, ds->dim, err);
            goto fail;
        }
        if (L.type == E_U8) {
            /* Once 0 and 255 are both seen nothing can change: images see
             * them in the first rows, so this loop costs almost nothing. */
            for (size_t i = 0; i < k && (lo8 > 0 || hi8 < 255); i++) {
                lo8 = stage[i] < lo8 ? stage[i] : lo8;
                hi8 = stage[i] > hi8 ? stage[i] : hi8;
            }
        } else {
            const float *xs = x + done;
            for (size_t i = 0; i < k; i++) {
                lo = xs[i] < lo ? xs[i] : lo;
                hi = xs[i] > hi ? xs[i] : hi;
            }
        }
        done += k;
    }
    if (rows == L.n_rows && (rc = check_end(r, &L, stage, err)))
        goto fail;
    ds->min = L.type == E_U8 ? lut[lo8] : lo;
    ds->max = L.type == E_U8 ? lut[hi8] : hi;
    free(stage);
    *out = ds;
    return 0;
fail:
    free(stage);
    daecl_dataset_destroy(ds);
    return rc;
}

uint64_t daecl_data_max_bytes(double max_mb)
{
    double b = max_mb * 1048576.0; /* max_mb <= 1e9 (schema): fits */
    return b < 1.0 ? 1 : (uint64_t)b;
}

int daecl_dataset_load(const char *path, size_t limit, uint64_t max_bytes, daecl_dataset **out,
                       daecl_err *err)
{
    if (!out || !path)
        return daecl_err_set(err, DAECL_EINVAL, "daecl_dataset_load needs a path and an output pointer");
    *out = NULL;
    /* A generated toy density (core/toy.h) rather than a file: a file
     * really named "toy:..." is out of reach here; name it ./toy:... */
    if (daecl_toy_is_spec(path))
        return daecl_toy_load(path, limit, max_bytes, out, err);
    reader r;
    int rc = rd_open_file(&r, path, err);
    if (!rc)
        rc = load_dataset(&r, limit, max_bytes, out, err);
    rd_close(&r);
    return rc;
}

int daecl_dataset_parse(const void *bytes, size_t n_bytes, const char *name, size_t limit,
                        uint64_t max_bytes, daecl_dataset **out, daecl_err *err)
{
    if (!out || (!bytes && n_bytes))
        return daecl_err_set(err, DAECL_EINVAL, "daecl_dataset_parse needs bytes and an output pointer");
    *out = NULL;
    reader r;
    int rc = rd_open_mem(&r, bytes, n_bytes, name, err);
    if (!rc)
        rc = load_dataset(&r, limit, max_bytes, out, err);
    rd_close(&r);
    return rc;
}

void daecl_dataset_shape(const daecl_dataset *ds, daecl_shape *out)
{
    memset(out, 0, sizeof *out);
    out->rank = ds->n_shape >= 1 && ds->n_shape <= DAECL_MAX_RANK ? ds->n_shape : 1;
    for (uint32_t i = 0; i < DAECL_MAX_RANK; i++)
        out->dims[i] = i < out->rank ? ds->shape[i] : 1u;
    if (ds->n_shape < 1 || ds->n_shape > DAECL_MAX_RANK)
        out->dims[0] = (uint32_t)ds->dim;
}

size_t daecl_npy_f32_header(char buf[DAECL_NPY_HEADER_MAX], const size_t *shape, uint32_t ndim)
{
    char dims[4 * 24] = "";
    size_t k = 0;
    for (uint32_t i = 0; i < ndim && i < 4; i++)
        k += (size_t)snprintf(dims + k, sizeof dims - k, "%s%zu", i ? ", " : "", shape[i]);
    int n = snprintf(buf + 10, DAECL_NPY_HEADER_MAX - 10,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%s%s), }", dims,
                     ndim == 1 ? "," : "");
    size_t len = 10 + (size_t)n + 1, padded = (len + 63) / 64 * 64;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)((padded - 10) & 0xff);
    buf[9] = (char)((padded - 10) >> 8);
    memset(buf + 10 + n, ' ', padded - len);
    buf[padded - 1] = '\n';
    return padded;
}

void daecl_dataset_destroy(daecl_dataset *ds)
{
    if (!ds)
        return;
    if (ds->mapped)
        munmap(ds->map_base, ds->map_bytes);
    else
        free((void *)ds->x); /* loaded: ours, const only to readers */
    free(ds);
}

uint64_t daecl_dataset_private_bytes(const daecl_dataset *ds)
{
    return ds && !ds->mapped ? (uint64_t)ds->n_rows * ds->dim * sizeof(float) : 0;
}

const char *daecl_dataset_storage(const daecl_dataset *ds)
{
    return ds && ds->mapped ? "mapped" : "loaded";
}

/* ---- labels ----------------------------------------------------------- */

static int load_labels(reader *r, size_t limit, uint64_t max_bytes, daecl_labels **out,
                       daecl_err *err)
{
    layout L;
    char shape[160];
    uint8_t *stage = NULL;
    daecl_labels *lb = NULL;
    int rc = read_header(r, &L, err);
    if (rc)
        return rc;
    if (L.type != E_U8 && L.type != E_I32 && L.type != E_I64)
        return daecl_err_set(err, DAECL_ENOTSUP,
                             "%s holds %s values; daecl reads class labels stored as uint8, int32 or int64", r->name,
                             L.type_name);
    if (L.ndim != 1)
        return daecl_err_set(err, DAECL_EDATA,
                             "%s has shape %s, but labels must be one-dimensional (one class number per row)",
                             r->name, shape_str(&L, shape, sizeof shape));
    if ((rc = layout_sizes(r, &L, err)))
        return rc;
    if (L.n_rows == 0)
        return daecl_err_set(err, DAECL_EDATA, "%s holds no labels (shape (0,)); it needs one label per row",
                             r->name);
    if ((rc = stored_size(r, &L, err)))
        return rc;
    size_t rows = limit && limit < L.n_rows ? limit : (size_t)L.n_rows;
    uint64_t y_bytes;
    if (__builtin_mul_overflow((uint64_t)rows, (uint64_t)sizeof(int32_t), &y_bytes))
        y_bytes = UINT64_MAX;
    if (max_bytes == 0)
        max_bytes = DAECL_DATA_MAX_BYTES_DEFAULT;
    if (y_bytes > max_bytes)
        return daecl_err_set(err, DAECL_ENOMEM,
                             "%s needs %" PRIu64 " bytes for its %zu labels, more than the limit of %" PRIu64
                             " bytes; raise the limit (data.max_mb, in MiB) or load fewer rows "
                             "(data.train_limit, data.test_limit)",
                             r->name, y_bytes, rows, max_bytes);
    size_t cap = rows;
    if (r->gz && r->size < (UINT64_MAX - STAGE_BYTES) / DEFLATE_MAX_RATIO) {
        uint64_t bound = (r->size * DEFLATE_MAX_RATIO + STAGE_BYTES) / L.elem_bytes;
        if (bound < cap)
            cap = (size_t)bound;
    }
    if (!(lb = calloc(1, sizeof *lb)) || !(lb->y = malloc(cap * sizeof(int32_t))) || !(stage = malloc(STAGE_BYTES))) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory allocating %zu bytes for the labels of %s",
                           cap * sizeof(int32_t), r->name);
        goto fail;
    }
    lb->n = rows;
    int64_t top = 0;
    size_t per = STAGE_BYTES / L.elem_bytes;
    for (size_t done = 0; done < rows;) {
        size_t k = rows - done < per ? rows - done : per;
        if (done + k > cap) {
            size_t ncap = cap > rows / 2 ? rows : 2 * cap;
            int32_t *ny = realloc(lb->y, ncap * sizeof(int32_t));
            if (!ny) {
                rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory growing the labels of %s to %zu bytes",
                                   r->name, ncap * sizeof(int32_t));
                goto fail;
            }
            lb->y = ny;
            cap = ncap;
        }
        if ((rc = read_elems(r, &L, stage, k, err)))
            goto fail;
        for (size_t i = 0; i < k; i++) {
            int64_t v;
            if (L.type == E_U8)
                v = stage[i];
            else if (L.type == E_I32)
                v = (int32_t)(uint32_t)load_u64(stage + 4 * i, 4, L.swap);
            else
                v = (int64_t)load_u64(stage + 8 * i, 8, L.swap);
            if (v < 0 || v > LABEL_MAX) {
                rc = daecl_err_set(err, DAECL_EDATA,
                                   "%s holds label %" PRId64 " at row %zu, outside [0, %d]; class labels are "
                                   "small non-negative integers",
                                   r->name, v, done + i, LABEL_MAX);
                goto fail;
            }
            lb->y[done + i] = (int32_t)v;
            top = v > top ? v : top;
        }
        done += k;
    }
    if (rows == L.n_rows && (rc = check_end(r, &L, stage, err)))
        goto fail;
    lb->n_classes = (uint32_t)top + 1;
    free(stage);
    *out = lb;
    return 0;
fail:
    free(stage);
    daecl_labels_destroy(lb);
    return rc;
}

int daecl_labels_load(const char *path, size_t limit, uint64_t max_bytes, daecl_labels **out,
                      daecl_err *err)
{
    if (!out || !path)
        return daecl_err_set(err, DAECL_EINVAL, "daecl_labels_load needs a path and an output pointer");
    *out = NULL;
    reader r;
    int rc = rd_open_file(&r, path, err);
    if (!rc)
        rc = load_labels(&r, limit, max_bytes, out, err);
    rd_close(&r);
    return rc;
}

void daecl_labels_destroy(daecl_labels *labels)
{
    if (!labels)
        return;
    free(labels->y);
    free(labels);
}

int daecl_dataset_take_tail(daecl_dataset *ds, size_t n_tail, daecl_dataset **tail,
                            daecl_err *err)
{
    *tail = NULL;
    daecl_dataset *t = malloc(sizeof *t);
    float *x = malloc(n_tail * ds->dim * sizeof *x);
    if (!t || !x) {
        free(t);
        free(x);
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory for %zu validation rows", n_tail);
    }
    size_t keep = ds->n_rows - n_tail;
    memcpy(x, ds->x + keep * ds->dim, n_tail * ds->dim * sizeof *x);
    *t = *ds;
    t->x = x;
    t->n_rows = n_tail;
    t->mapped = 0;
    t->map_base = NULL;
    t->map_bytes = 0;
    ds->n_rows = keep; /* a mapping keeps its length: munmap takes it whole */
    *tail = t;
    return 0;
}

int daecl_labels_take_tail(daecl_labels *lb, size_t n_tail, daecl_labels **tail, daecl_err *err)
{
    *tail = NULL;
    daecl_labels *t = malloc(sizeof *t);
    int32_t *y = malloc(n_tail * sizeof *y);
    if (!t || !y) {
        free(t);
        free(y);
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory for %zu validation labels",
                             n_tail);
    }
    memcpy(y, lb->y + (lb->n - n_tail), n_tail * sizeof *y);
    *t = *lb;
    t->y = y;
    t->n = n_tail;
    lb->n -= n_tail;
    *tail = t;
    return 0;
}
