#include "cli/cli_data.h"
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

// The "dataset" metadata of a safetensors file, from its header alone (a checkpoint can be gigabytes);
// NULL if absent or unreadable (the model loader reports a broken file properly). malloc'd.
static char *checkpoint_dataset(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char len8[8];
    char *out = NULL;
    if (fread(len8, 1, 8, f) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
        char *h = n > 0 && n < (100u << 20) ? malloc(n + 1) : NULL;
        if (h && fread(h, 1, n, f) == n) {
            h[n] = 0;
            cJSON *root = cJSON_Parse(h);
            cJSON *meta = root ? cJSON_GetObjectItemCaseSensitive(root, "__metadata__") : NULL;
            cJSON *d = meta ? cJSON_GetObjectItemCaseSensitive(meta, "dataset") : NULL;
            if (cJSON_IsString(d)) out = xstrdup(d->valuestring);
            cJSON_Delete(root);
        }
        free(h);
    }
    fclose(f);
    return out;
}

void cli_data_from_checkpoint(DataSpec *spec, const ArgParser *ap, const char *ckpt, const char *command) {
    const char *flags[] = {"data", "data-format", "image-size", "data-labels", "data-classes", "latent-scale", "latent-shift"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (args_seen(ap, flags[i])) return;
    char *desc = ckpt && ckpt[0] ? checkpoint_dataset(ckpt) : NULL;
    DataSpec s = *spec;
    if (desc && data_spec_from_description(desc, &s)) {
        s.cache_mb = spec->cache_mb;
        *spec = s;
        fprintf(stderr, "ddm %s: data: %s, as recorded in %s (--data to use other data)\n", command, spec->path, ckpt);
    }
    free(desc);
}

DataSource *cli_open_test(const DataSpec *spec, const char *test_path) {
    if (!test_path || !test_path[0]) return data_open(spec, "test", 0);
    DataSpec s = *spec;
    snprintf(s.path, sizeof s.path, "%s", test_path);
    return data_open(&s, "test", 1);
}

void cli_print_data(const char *command, const char *role, const DataSource *d) {
    char line[3000];
    data_describe_line(d, line, sizeof line);
    fprintf(stderr, "ddm %s: %s: %s\n", command, role, line);
}

void cli_data_write_config(FILE *f, const DataSpec *spec, const char *test_data) {
    DataSpec d;
    data_spec_defaults(&d);
    fprintf(f, "data = %s\n", spec->path);
    if (strcmp(spec->format, d.format) && spec->format[0]) fprintf(f, "data-format = %s\n", spec->format);
    if (test_data && test_data[0]) fprintf(f, "test-data = %s\n", test_data);
    if (spec->image_size) fprintf(f, "image-size = %d\n", spec->image_size);
    if (spec->labels[0]) fprintf(f, "data-labels = %s\n", spec->labels);
    if (spec->classes) fprintf(f, "data-classes = %d\n", spec->classes);
    if (spec->scale[0]) fprintf(f, "latent-scale = %s\n", spec->scale);
    if (spec->shift[0]) fprintf(f, "latent-shift = %s\n", spec->shift);
    if (spec->cache_mb != d.cache_mb) fprintf(f, "data-cache-mb = %d\n", spec->cache_mb);
}
