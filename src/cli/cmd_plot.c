// ddm plot: line charts (PNG) of fields of JSONL logs, e.g. the loss curves of log.jsonl from ddm train.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/args.h"
#include "cli/cli.h"
#include "common.h"
#include "io/plot.h"

#define MAX_LOGS 32
#define MAX_FIELDS 16

typedef struct { double *x, *y; int n, cap, lines; } Column; // lines: lines that have the field

static void column_push(Column *c, double x, double y) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->x = xrealloc(c->x, (size_t)c->cap * sizeof(double));
        c->y = xrealloc(c->y, (size_t)c->cap * sizeof(double));
    }
    c->x[c->n] = x, c->y[c->n] = y, c->n++;
}

// Splits a comma-separated flag value in place; empty items are an error.
static int split_list(char *s, char **items, int max, const char *flag) {
    int n = 0;
    for (char *tok = s, *end; tok; tok = end ? end + 1 : NULL) {
        end = strchr(tok, ',');
        if (end) *end = 0;
        if (!*tok) ddm_fatal("bad --%s: empty item in the comma-separated list", flag);
        if (n == max) ddm_fatal("bad --%s: more than %d items", flag, max);
        items[n++] = tok;
    }
    return n;
}

// The distinct keys seen in a log, for the error message about a missing field.
#define MAX_SEEN 32
typedef struct { char name[MAX_SEEN][48]; int n, more; } Seen;

static void note_fields(const cJSON *obj, Seen *seen) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        if (!it->string) continue;
        int known = 0;
        for (int i = 0; i < seen->n && !known; i++) known = !strncmp(seen->name[i], it->string, 47);
        if (known) continue;
        if (seen->n == MAX_SEEN) { seen->more = 1; continue; }
        snprintf(seen->name[seen->n++], 48, "%s", it->string);
    }
}

static void fatal_missing(const char *path, const char *field, const Seen *seen) {
    char list[MAX_SEEN * 50 + 16] = "";
    for (int i = 0; i < seen->n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", seen->name[i]);
    if (seen->more) snprintf(list + strlen(list), sizeof list - strlen(list), ", ...");
    ddm_fatal("%s: no line has the field '%s' (fields seen: %s)", path, field, seen->n ? list : "none");
}

// The value of a field as a number: NaN for null (a gap); 0 returned when absent or not a number.
static int field_value(const cJSON *obj, const char *name, double *v) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (cJSON_IsNumber(it)) *v = it->valuedouble;
    else if (cJSON_IsNull(it)) *v = NAN;
    else return 0;
    return 1;
}

static int blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') return 0;
    return 1;
}

// One parsed line: its x, and for every field with a value a point in cols[f].
static void take_line(const cJSON *obj, const char *xf, char **fields, int nf, Column *cols, Column *xcol) {
    double x, y;
    int hx = field_value(obj, xf, &x);
    if (hx) xcol->lines++;
    for (int f = 0; f < nf; f++) {
        if (!field_value(obj, fields[f], &y)) continue;
        cols[f].lines++;
        if (hx && isfinite(x)) column_push(&cols[f], x, y);
    }
}

static void read_log(const char *path, const char *xf, char **fields, int nf, Column *cols) {
    FILE *fp = xfopen(path, "r");
    char *line = NULL;
    Seen seen = {0};
    size_t cap = 0;
    Column xcol = {0};
    for (int lineno = 1; getline(&line, &cap, fp) >= 0; lineno++) {
        if (blank(line)) continue;
        cJSON *obj = cJSON_Parse(line);
        if (!cJSON_IsObject(obj))
            ddm_fatal("%s:%d: not a JSON object (malformed line%s)", path, lineno, obj ? "" : ": cannot parse it");
        note_fields(obj, &seen);
        take_line(obj, xf, fields, nf, cols, &xcol);
        cJSON_Delete(obj);
    }
    free(line);
    fclose(fp);
    if (!xcol.lines) fatal_missing(path, xf, &seen);
    for (int f = 0; f < nf; f++)
        if (!cols[f].lines) fatal_missing(path, fields[f], &seen);
}

// Trailing moving average over the last k finite values; non-finite values stay (gaps).
static void smooth(double *y, int n, int k) {
    if (k <= 1) return;
    double *out = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(double)), sum = 0;
    int *idx = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(int)), head = 0, cnt = 0;
    for (int i = 0; i < n; i++) {
        out[i] = y[i];
        if (!isfinite(y[i])) continue;
        idx[head + cnt++] = i, sum += y[i];
        if (cnt > k) sum -= y[idx[head++]], cnt--;
        out[i] = sum / cnt;
    }
    memcpy(y, out, (size_t)n * sizeof(double));
    free(out);
    free(idx);
}

// The name of the directory holding path ("runs/a/log.jsonl" -> "a"); the file name when it has none.
static void run_label(const char *path, char *buf, size_t size) {
    const char *slash = strrchr(path, '/');
    if (!slash) { snprintf(buf, size, "%s", path); return; }
    const char *end = slash;
    while (end > path && end[-1] == '/') end--;
    const char *start = end;
    while (start > path && start[-1] != '/') start--;
    if (end == start) snprintf(buf, size, "%s", slash + 1);
    else snprintf(buf, size, "%.*s", (int)(end - start), start);
}

static void check_field_name(const char *name, const char *flag) {
    for (const char *q = name; *q; q++)
        if (*q < 33 || *q > 126 || *q == '"')
            ddm_fatal("bad --%s: field name '%s' has a space, quote or non-ASCII character", flag, name);
}

int cmd_plot(int argc, char **argv) {
    char logs[8192] = "", ys[1024] = "", xf[128] = "step", title[256] = "", outp[512] = "";
    int k = 1, logy = 0, width = 900, height = 500, aa = 1;
    ArgSpec specs[] = {
        {"log", ARG_STR, logs, sizeof logs, 0, 0, "JSONL log(s), comma-separated: a/log.jsonl,b/log.jsonl", 0, NULL},
        {"y", ARG_STR, ys, sizeof ys, 0, 0, "field(s) to plot, comma-separated: loss_diff,loss_disp", 0, NULL},
        {"x", ARG_STR, xf, sizeof xf, 0, 0, "field on the x axis", 0, NULL},
        {"smooth", ARG_INT, &k, 0, 1, 1000000, "trailing moving average over K points (1 = none)", 0, NULL},
        {"logy", ARG_BOOL, &logy, 0, 0, 1, "log-scale y axis (values <= 0 are skipped)", 0, NULL},
        {"title", ARG_STR, title, sizeof title, 0, 0, "chart title (default: the run name or the fields)", 0, NULL},
        {"out", ARG_STR, outp, sizeof outp, 0, 0, "output PNG", 0, NULL},
        {"width", ARG_INT, &width, 0, 160, 16384, "image width in pixels", 0, NULL},
        {"height", ARG_INT, &height, 0, 120, 16384, "image height in pixels", 0, NULL},
        {"antialias", ARG_BOOL, &aa, 0, 0, 1, "anti-aliased lines", 0, NULL},
    };
    ArgParser p = {"plot", "Line charts (PNG) of fields of JSONL logs (ddm train's log.jsonl, ...).", specs,
                   sizeof specs / sizeof specs[0]};
    args_parse(&p, argc, argv);
    if (!logs[0] || !ys[0] || !outp[0]) ddm_fatal("ddm plot needs --log, --y and --out (see ddm plot --help)");
    char *files[MAX_LOGS], *fields[MAX_FIELDS], yjoined[1024];
    snprintf(yjoined, sizeof yjoined, "%s", ys);
    int nl = split_list(logs, files, MAX_LOGS, "log"), nf = split_list(ys, fields, MAX_FIELDS, "y");
    for (int f = 0; f < nf; f++) check_field_name(fields[f], "y");
    check_field_name(xf, "x");
    if (!title[0]) {
        if (nl == 1) run_label(files[0], title, sizeof title);
        else snprintf(title, sizeof title, "%.200s", yjoined);
    }
    Plot plot;
    plot_init(&plot, title, xf, nf == 1 ? fields[0] : "");
    plot.logy = logy, plot.antialias = aa;
    for (int l = 0; l < nl; l++) {
        Column cols[MAX_FIELDS] = {{0}};
        read_log(files[l], xf, fields, nf, cols);
        char run[128], name[300];
        run_label(files[l], run, sizeof run);
        for (int f = 0; f < nf; f++) {
            smooth(cols[f].y, cols[f].n, k);
            if (nl > 1) snprintf(name, sizeof name, "%s: %s", run, fields[f]);
            else snprintf(name, sizeof name, "%s", fields[f]);
            plot_add_series(&plot, name, cols[f].x, cols[f].y, cols[f].n);
            free(cols[f].x);
            free(cols[f].y);
        }
    }
    plot_write_png(&plot, outp, width, height);
    fprintf(stderr, "ddm plot: wrote %s (%dx%d, %d series)\n", outp, width, height, plot.nseries);
    plot_free(&plot);
    return 0;
}
