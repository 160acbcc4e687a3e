#include "config/args.h"
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include "common.h"

static ArgSpec *find(ArgParser *p, const char *name) {
    for (int i = 0; i < p->n; i++) if (strcmp(p->specs[i].name, name) == 0) return &p->specs[i];
    return NULL;
}

// "--name 'v': expected a, b or c" when v is not one of the choices.
static void check_choice(const ArgSpec *s, const char *v, const char *where) {
    const char *c = s->choices;
    size_t len = strlen(v);
    for (const char *p = c;; p++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !strncmp(p, v, n)) return;
        if (!bar) break;
        p = bar;
    }
    char list[512] = "";
    int items = 0, k = 0;
    for (const char *p = c; *p; p++) items += *p == '|';
    for (const char *p = c;; k++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%.*s", !list[0] ? "" : k == items ? " or " : ", ",
                        (int)n, p);
        if (!bar) break;
        p = bar + 1;
    }
    ddm_fatal("%s--%s '%s': expected %s", where, s->name, v, list);
}

void args_set(ArgSpec *s, const char *v, const char *where) {
    char *end;
    errno = 0;
    switch (s->type) {
    case ARG_INT: case ARG_FLOAT: case ARG_U64: {
        double x = s->type == ARG_U64 ? (double)strtoull(v, &end, 10) : strtod(v, &end);
        if (end == v || *end || errno || !isfinite(x))
            ddm_fatal("%s--%s '%s': expected a number%s", where, s->name, v, s->type == ARG_FLOAT ? "" : " (integer)");
        if (s->type != ARG_FLOAT && x != floor(x))
            ddm_fatal("%s--%s '%s': expected an integer", where, s->name, v);
        if (x < s->min || x > s->max)
            ddm_fatal("%s--%s %s: out of range, expected %g to %g", where, s->name, v, s->min, s->max);
        if (s->type == ARG_INT) *(int *)s->dst = (int)x;
        else if (s->type == ARG_FLOAT) *(float *)s->dst = (float)x;
        else *(uint64_t *)s->dst = strtoull(v, NULL, 10);
        break;
    }
    case ARG_BOOL:
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) *(int *)s->dst = 1;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) *(int *)s->dst = 0;
        else ddm_fatal("%s--%s '%s': expected 1/0, true/false or yes/no", where, s->name, v);
        break;
    case ARG_STR:
        if (strlen(v) >= s->size) ddm_fatal("%s--%s: value longer than %zu characters", where, s->name, s->size - 1);
        if (s->choices) check_choice(s, v, where);
        strcpy((char *)s->dst, v);
        break;
    }
    s->seen = 1;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = 0;
    return s;
}

// Lines of any length (getline): a fixed buffer would split a long line and make its tail a line of its own (the
// end of a long comment read as a setting). A directory, or a file that cannot be read to its end, is an error,
// not an empty configuration.
static void read_config(ArgParser *p, const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) ddm_fatal("--config %s: is a directory, expected a file of 'name = value' lines", path);
    FILE *f = xfopen(path, "r");
    char *line = NULL, where[600];
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        snprintf(where, sizeof where, "%s:%d:", path, lineno);
        if ((size_t)len != strlen(line)) ddm_fatal("%s a NUL byte: expected a text file of 'name = value' lines", where);
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *s = trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) ddm_fatal("%s expected 'name = value', got '%.200s'", where, s);
        *eq = 0;
        char *name = trim(s), *value = trim(eq + 1);
        ArgSpec *spec = find(p, name);
        if (!spec || !strcmp(name, "config")) ddm_fatal("%s unknown setting '%.200s' for 'ddm %s'", where, name, p->command);
        args_set(spec, value, where);
    }
    if (ferror(f)) ddm_fatal("--config %s: read error after line %d", path, lineno);
    free(line);
    fclose(f);
}

void args_print_help(const ArgParser *p) {
    printf("usage: ddm %s [flags]\n%s\n\nflags:\n", p->command, p->summary);
    for (int i = 0; i < p->n; i++) {
        const ArgSpec *s = &p->specs[i];
        char def[600] = "";
        switch (s->type) {
        case ARG_INT: snprintf(def, sizeof def, "%d", *(int *)s->dst); break;
        case ARG_FLOAT: snprintf(def, sizeof def, "%g", *(float *)s->dst); break;
        case ARG_U64: snprintf(def, sizeof def, "%llu", (unsigned long long)*(uint64_t *)s->dst); break;
        case ARG_BOOL: snprintf(def, sizeof def, "%s", *(int *)s->dst ? "on" : "off"); break;
        case ARG_STR: snprintf(def, sizeof def, "%s", *(char *)s->dst ? (char *)s->dst : "none"); break;
        }
        printf("  --%-16s %s [%s]\n", s->name, s->help, def);
    }
    printf("  --%-16s %s\n  --%-16s %s\n", "config FILE", "read 'name = value' lines first", "help", "show this help");
}

void args_parse(ArgParser *p, int argc, char **argv) {
    // --help and --config first, so config values are overridden by explicit flags.
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { args_print_help(p); exit(0); }
        if (!strncmp(argv[i], "--config", 8) && (argv[i][8] == 0 || argv[i][8] == '=')) {
            const char *path = argv[i][8] == '=' ? argv[i] + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (!path) ddm_fatal("--config needs a file name");
            read_config(p, path);
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) ddm_fatal("ddm %s: unexpected argument '%s' (see ddm %s --help)", p->command, a, p->command);
        char name[128];
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, a + 2, len);
        name[len] = 0;
        if (!strcmp(name, "config")) { if (!eq) i++; continue; }
        ArgSpec *s = find(p, name);
        if (!s) ddm_fatal("ddm %s: unknown flag --%s (see ddm %s --help)", p->command, name, p->command);
        const char *v = eq ? eq + 1 : NULL;
        if (!v && s->type == ARG_BOOL) {   // "--flip" alone, or "--flip 0" / "--flip false"
            const char *next = i + 1 < argc ? argv[i + 1] : "";
            const char *words[] = {"0", "1", "true", "false", "yes", "no"};
            v = "1";
            for (int w = 0; w < 6; w++) if (!strcmp(next, words[w])) { v = argv[++i]; break; }
        }
        if (!v) {
            if (i + 1 >= argc) ddm_fatal("ddm %s: --%s needs a value", p->command, name);
            v = argv[++i];
        }
        args_set(s, v, "");
    }
}

int args_seen(const ArgParser *p, const char *name) {
    for (int i = 0; i < p->n; i++) if (!strcmp(p->specs[i].name, name)) return p->specs[i].seen;
    return 0;
}
