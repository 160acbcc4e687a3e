#include "io/npz.h"
#include "common.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <zlib.h>

// Record signatures and fixed lengths (PKWARE APPNOTE 4.3).
#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_END 0x06054b50u
#define SIG_END64 0x06064b50u
#define SIG_END64_LOCATOR 0x07064b50u
#define LEN_LOCAL 30
#define LEN_CENTRAL 46
#define LEN_END 22
#define LEN_END64 56
#define LEN_END64_LOCATOR 20
#define MAX_COMMENT 65535
#define ZIP64_EXTRA_ID 0x0001
#define SAT16 0xffffu        // a 16-bit field whose value is in the ZIP64 record
#define SAT32 0xffffffffu    // a 32-bit field whose value is in the ZIP64 record or extra field
#define MAX_DEFLATE_RATIO 1032 // deflate cannot expand more than about 1032:1

typedef struct { FILE *f; const char *path; uint64_t size; } ZipFile;
typedef struct { uint64_t entries, cd_off, cd_size, cd_end; } ZipDir; // cd_end: where the end record starts
typedef struct { char *name; uint64_t comp, size, offset; uint32_t crc; unsigned method, flags; } ZipEntry;

static uint64_t le(const unsigned char *b, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static void seek_to(const ZipFile *z, uint64_t off) {
    if (fseeko(z->f, (off_t)off, SEEK_SET) != 0) ddm_fatal("%s: cannot seek: %s", z->path, strerror(errno));
}

// Reads n bytes at off; a range outside the file means the archive is truncated or its offsets corrupt.
static void read_at(const ZipFile *z, uint64_t off, void *buf, size_t n, const char *what) {
    if (off > z->size || n > z->size - off)
        ddm_fatal("%s: truncated or corrupt .npz: the %s (%zu bytes at offset %llu) lies past the end of the "
                  "%llu-byte file", z->path, what, n, (unsigned long long)off, (unsigned long long)z->size);
    seek_to(z, off);
    if (n && fread(buf, 1, n, z->f) != n) ddm_fatal("%s: read error: %s", z->path, strerror(errno));
}

// The ZIP64 end record, when a locator sits just before the classic one: 64-bit counts and offsets.
static int read_zip64_end(const ZipFile *z, uint64_t end_off, ZipDir *d) {
    if (end_off < LEN_END64_LOCATOR) return 0;
    unsigned char loc[LEN_END64_LOCATOR], r[LEN_END64];
    read_at(z, end_off - LEN_END64_LOCATOR, loc, sizeof loc, "ZIP64 end-of-central-directory locator");
    if (le(loc, 4) != SIG_END64_LOCATOR) return 0;
    uint64_t off = le(loc + 8, 8);
    read_at(z, off, r, sizeof r, "ZIP64 end-of-central-directory record");
    if (le(r, 4) != SIG_END64) ddm_fatal("%s: corrupt .npz: bad ZIP64 end-of-central-directory signature", z->path);
    if (le(r + 16, 4) || le(r + 20, 4) || le(loc + 4, 4))
        ddm_fatal("%s: multi-disk (split) ZIP archives are not supported", z->path);
    d->entries = le(r + 32, 8);
    d->cd_size = le(r + 40, 8);
    d->cd_off = le(r + 48, 8);
    d->cd_end = off;
    return 1;
}

// Finds the end-of-central-directory record: the last 22 bytes unless a comment (<= 64 KiB) follows it.
static ZipDir find_directory(const ZipFile *z) {
    if (z->size < LEN_END)
        ddm_fatal("%s: not a .npz (ZIP) archive: %llu bytes is too short (empty or truncated?)", z->path,
                  (unsigned long long)z->size);
    size_t tail = z->size < LEN_END + MAX_COMMENT ? (size_t)z->size : LEN_END + MAX_COMMENT;
    unsigned char *t = xmalloc(tail);
    read_at(z, z->size - tail, t, tail, "end of the archive");
    long pos = -1;
    for (long i = (long)(tail - LEN_END); i >= 0 && pos < 0; i--)
        if (le(t + i, 4) == SIG_END && (size_t)i + LEN_END + le(t + i + 20, 2) == tail) pos = i;
    if (pos < 0)
        ddm_fatal("%s: not a .npz (ZIP) archive, or a truncated one: no end-of-central-directory record", z->path);
    const unsigned char *e = t + pos;
    ZipDir d = {le(e + 10, 2), le(e + 16, 4), le(e + 12, 4), z->size - tail + (uint64_t)pos};
    if (le(e + 4, 2) || le(e + 6, 2)) ddm_fatal("%s: multi-disk (split) ZIP archives are not supported", z->path);
    int saturated = d.entries == SAT16 || d.cd_off == SAT32 || d.cd_size == SAT32;
    free(t);
    if (!read_zip64_end(z, d.cd_end, &d) && saturated)
        ddm_fatal("%s: corrupt .npz: the end record points to a ZIP64 record that is not there", z->path);
    if (d.cd_off > d.cd_end || d.cd_size > d.cd_end - d.cd_off)
        ddm_fatal("%s: truncated or corrupt .npz: the central directory (%llu bytes at offset %llu) overlaps the end "
                  "record at %llu", z->path, (unsigned long long)d.cd_size, (unsigned long long)d.cd_off,
                  (unsigned long long)d.cd_end);
    if (d.entries > d.cd_size / LEN_CENTRAL)
        ddm_fatal("%s: corrupt .npz: %llu entries do not fit in a central directory of %llu bytes", z->path,
                  (unsigned long long)d.entries, (unsigned long long)d.cd_size);
    return d;
}

// Replaces the saturated 32-bit fields of an entry with the ZIP64 extra field's 64-bit values, which
// come in the order size, compressed size, offset and only for the fields that are saturated.
static void apply_zip64_extra(ZipEntry *e, const unsigned char *x, size_t xlen, const char *path) {
    uint64_t *fields[3] = {&e->size, &e->comp, &e->offset};
    int found = 0;
    for (size_t q = 0; q + 4 <= xlen;) {
        size_t id = le(x + q, 2), len = le(x + q + 2, 2);
        if (q + 4 + len > xlen) ddm_fatal("%s: corrupt .npz: an extra field of '%s' runs past its entry", path, e->name);
        if (id == ZIP64_EXTRA_ID) {
            size_t k = 0;
            for (int i = 0; i < 3; i++) {
                if (*fields[i] != SAT32) continue;
                if (k + 8 > len) ddm_fatal("%s: corrupt .npz: the ZIP64 extra field of '%s' is too short", path, e->name);
                *fields[i] = le(x + q + 4 + k, 8);
                k += 8;
            }
            found = 1;
        }
        q += 4 + len;
    }
    if (!found && (e->size == SAT32 || e->comp == SAT32 || e->offset == SAT32))
        ddm_fatal("%s: corrupt .npz: '%s' needs a ZIP64 extra field but has none", path, e->name);
}

static ZipEntry *read_entries(const ZipFile *z, const ZipDir *d) {
    unsigned char *cd = xmalloc(d->cd_size ? (size_t)d->cd_size : 1);
    read_at(z, d->cd_off, cd, (size_t)d->cd_size, "central directory");
    ZipEntry *es = xcalloc(d->entries ? (size_t)d->entries : 1, sizeof(ZipEntry));
    size_t p = 0;
    for (uint64_t i = 0; i < d->entries; i++) {
        const unsigned char *h = cd + p;
        if (p + LEN_CENTRAL > d->cd_size || le(h, 4) != SIG_CENTRAL)
            ddm_fatal("%s: corrupt .npz: bad signature of central-directory entry %llu", z->path,
                      (unsigned long long)i);
        size_t nlen = le(h + 28, 2), xlen = le(h + 30, 2), clen = le(h + 32, 2);
        if (p + LEN_CENTRAL + nlen + xlen + clen > d->cd_size)
            ddm_fatal("%s: corrupt .npz: central-directory entry %llu runs past the directory", z->path,
                      (unsigned long long)i);
        ZipEntry *e = &es[i];
        e->flags = (unsigned)le(h + 8, 2);
        e->method = (unsigned)le(h + 10, 2);
        e->crc = (uint32_t)le(h + 16, 4);
        e->comp = le(h + 20, 4);
        e->size = le(h + 24, 4);
        e->offset = le(h + 42, 4);
        e->name = xmalloc(nlen + 1);
        memcpy(e->name, h + LEN_CENTRAL, nlen);
        e->name[nlen] = '\0';
        if (le(h + 34, 2) != 0 && le(h + 34, 2) != SAT16)
            ddm_fatal("%s: multi-disk (split) ZIP archives are not supported", z->path);
        apply_zip64_extra(e, h + LEN_CENTRAL + nlen, xlen, z->path);
        p += LEN_CENTRAL + nlen + xlen + clen;
    }
    free(cd);
    return es;
}

static int name_is(const char *name, const char *want) {
    size_t n = strlen(want);
    return strncmp(name, want, n) == 0 && (name[n] == '\0' || strcmp(name + n, ".npy") == 0);
}

static const ZipEntry *select_entry(const ZipEntry *es, uint64_t n, const char *member, const char *path) {
    if (!n) ddm_fatal("%s: the .npz archive holds no arrays", path);
    int named = member && member[0];
    for (uint64_t i = 0; i < n; i++)
        if (name_is(es[i].name, named ? member : "arr_0")) return &es[i];
    if (!named) return &es[0];
    char list[256] = "";
    size_t k = 0;
    for (uint64_t i = 0; i < n && k + 1 < sizeof list; i++) {
        int len = (int)strlen(es[i].name);
        if (len >= 4 && strcmp(es[i].name + len - 4, ".npy") == 0) len -= 4;
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%.*s", i ? ", " : "", len, es[i].name);
    }
    if (k >= sizeof list - 1) strcpy(list + sizeof list - 5, "...");
    ddm_fatal("%s: the archive has no array '%s' (it holds: %s)", path, member, list);
}

// Raw deflate (no zlib header) from the file at off into out[0..size).
static void inflate_member(const ZipFile *z, uint64_t off, uint64_t comp, unsigned char *out, uint64_t size,
                           const char *what) {
    enum { CHUNK = 1 << 20, MAX_OUT = 1 << 30 };
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) ddm_fatal("%s: cannot initialise zlib", what);
    unsigned char *in = xmalloc(CHUNK), spare;
    uint64_t fed = 0, done = 0;
    int ret = Z_OK;
    seek_to(z, off);
    while (ret != Z_STREAM_END) {
        if (s.avail_in == 0) {
            if (fed == comp) ddm_fatal("%s: truncated or corrupt deflate data: it ends before its last block", what);
            size_t k = comp - fed < CHUNK ? (size_t)(comp - fed) : CHUNK;
            if (fread(in, 1, k, z->f) != k) ddm_fatal("%s: read error", what);
            fed += k;
            s.next_in = in;
            s.avail_in = (uInt)k;
        }
        // Once out is full, inflate into a one-byte spare: any output there means the member is too long.
        uInt cap = done == size ? 1 : (size - done < MAX_OUT ? (uInt)(size - done) : MAX_OUT);
        s.next_out = done == size ? &spare : out + done;
        s.avail_out = cap;
        ret = inflate(&s, Z_NO_FLUSH);
        if (ret == Z_DATA_ERROR || ret == Z_NEED_DICT || ret == Z_MEM_ERROR)
            ddm_fatal("%s: corrupt deflate data (%s)", what, s.msg ? s.msg : "zlib error");
        if (done == size && s.avail_out == 0)
            ddm_fatal("%s: corrupt .npz: the member inflates to more than the %llu bytes the directory declares", what,
                      (unsigned long long)size);
        if (done < size) done += cap - s.avail_out;
    }
    inflateEnd(&s);
    free(in);
    if (done != size)
        ddm_fatal("%s: corrupt .npz: the member inflates to %llu bytes but the directory declares %llu", what,
                  (unsigned long long)done, (unsigned long long)size);
}

static unsigned char *read_member(const ZipFile *z, const ZipDir *d, const ZipEntry *e, const char *what) {
    if (e->flags & 1) ddm_fatal("%s: encrypted ZIP members are not supported", what);
    if (e->method != 0 && e->method != 8)
        ddm_fatal("%s: ZIP compression method %u is not supported (numpy writes 0 = stored or 8 = deflate)", what,
                  e->method);
    if ((e->method == 0 && e->comp != e->size) || (e->method == 8 && e->size / MAX_DEFLATE_RATIO > e->comp + 1))
        ddm_fatal("%s: corrupt .npz: a size of %llu bytes cannot come from %llu %s bytes", what,
                  (unsigned long long)e->size, (unsigned long long)e->comp, e->method ? "compressed" : "stored");
    unsigned char lh[LEN_LOCAL];
    read_at(z, e->offset, lh, sizeof lh, "local file header");
    if (le(lh, 4) != SIG_LOCAL)
        ddm_fatal("%s: corrupt .npz: bad local-file-header signature at offset %llu", what,
                  (unsigned long long)e->offset);
    uint64_t data = e->offset + LEN_LOCAL + le(lh + 26, 2) + le(lh + 28, 2);
    if (data > d->cd_off || e->comp > d->cd_off - data)
        ddm_fatal("%s: truncated or corrupt .npz: the member's %llu bytes at offset %llu run into the central "
                  "directory at %llu", what, (unsigned long long)e->comp, (unsigned long long)data,
                  (unsigned long long)d->cd_off);
    if (e->size >= SIZE_MAX) ddm_fatal("%s: the member is too large for this machine", what);
    unsigned char *out = xmalloc(e->size ? (size_t)e->size : 1);
    if (e->method == 0) read_at(z, data, out, (size_t)e->size, "member data");
    else inflate_member(z, data, e->comp, out, e->size, what);
    uint32_t crc = (uint32_t)crc32_z(crc32(0, NULL, 0), out, (z_size_t)e->size);
    if (crc != e->crc)
        ddm_fatal("%s: corrupt .npz: CRC-32 mismatch (the directory says %08x, the data gives %08x)", what, e->crc,
                  crc);
    return out;
}

NpyArray npz_load_f32(const char *path, const char *member, char *chosen, size_t chosen_cap) {
    ZipFile z = {xfopen(path, "rb"), path, 0};
    if (fseeko(z.f, 0, SEEK_END) != 0) ddm_fatal("%s: cannot seek: %s", path, strerror(errno));
    z.size = (uint64_t)ftello(z.f);
    ZipDir d = find_directory(&z);
    ZipEntry *es = read_entries(&z, &d);
    const ZipEntry *e = select_entry(es, d.entries, member, path);
    char *what = xmalloc(strlen(path) + strlen(e->name) + 2);
    sprintf(what, "%s:%s", path, e->name);
    if (chosen && chosen_cap) snprintf(chosen, chosen_cap, "%s", what);
    unsigned char *buf = read_member(&z, &d, e, what);
    fclose(z.f);
    NpyArray a = npy_parse_f32(buf, (size_t)e->size, what);
    free(buf);
    free(what);
    for (uint64_t i = 0; i < d.entries; i++) free(es[i].name);
    free(es);
    return a;
}

char **npz_member_names(const char *path, int *count) {
    ZipFile z = {xfopen(path, "rb"), path, 0};
    if (fseeko(z.f, 0, SEEK_END) != 0) ddm_fatal("%s: cannot seek: %s", path, strerror(errno));
    z.size = (uint64_t)ftello(z.f);
    ZipDir d = find_directory(&z);
    ZipEntry *es = read_entries(&z, &d);
    fclose(z.f);
    char **names = xcalloc((size_t)d.entries + 1, sizeof(char *));
    for (uint64_t i = 0; i < d.entries; i++) {
        size_t len = strlen(es[i].name);
        if (len >= 4 && strcmp(es[i].name + len - 4, ".npy") == 0) es[i].name[len - 4] = '\0';
        names[i] = es[i].name;
    }
    free(es);
    if (count) *count = (int)d.entries;
    return names;
}
