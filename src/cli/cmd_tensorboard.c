// ddm tensorboard: a run's log.jsonl (and optionally image grids) as a TensorBoard event file, for runs
// that did not write one while training, or for any JSONL log with a "step" field.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/args.h"
#include "cli/cli.h"
#include "common.h"
#include "io/tfevents.h"

int cmd_tensorboard(int argc, char **argv) {
    char log[1024] = "", out[1024] = "", prefix[64] = "";
    ArgSpec specs[] = {
        {"log", ARG_STR, log, sizeof log, 0, 0, "the JSONL log (ddm train's log.jsonl): every number of every line becomes a "
         "scalar at the line's \"step\"", 0, NULL},
        {"out", ARG_STR, out, sizeof out, 0, 0, "directory of the event file (default: the log's directory); point "
         "`tensorboard --logdir` at it or a parent", 0, NULL},
        {"prefix", ARG_STR, prefix, sizeof prefix, 0, 0, "prepended to every tag (e.g. train/)", 0, NULL},
    };
    ArgParser ap = {"tensorboard", "Write a JSONL log as a TensorBoard event file (events.out.tfevents.<time>.<host>).",
                    specs, sizeof specs / sizeof specs[0]};
    args_parse(&ap, argc, argv);
    if (!log[0]) ddm_fatal("ddm tensorboard needs --log FILE (a run's log.jsonl)");
    FILE *f = xfopen(log, "r");
    if (!out[0]) {
        const char *slash = strrchr(log, '/');
        if (slash) snprintf(out, sizeof out, "%.*s", (int)(slash - log), log);
        else snprintf(out, sizeof out, ".");
    }
    TfEvents *t = tfevents_open(out, 0);
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, events = 0, scalars = 0, skipped = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)len) continue;
        int k = tfevents_log_json(t, line, prefix);
        if (k < 0) {
            if (!skipped) fprintf(stderr, "ddm tensorboard: warning: %s:%ld: not a JSON object with a numeric \"step\"; "
                                  "skipped (further such lines are only counted)\n", log, lineno);
            skipped++;
            continue;
        }
        events++;
        scalars += k;
    }
    free(line);
    fclose(f);
    char path[2048];
    snprintf(path, sizeof path, "%s", tfevents_path(t));
    tfevents_close(t);
    printf("wrote %s: %ld scalars from %ld lines of %s", path, scalars, events, log);
    if (skipped) printf(" (%ld lines skipped: not a JSON object with a numeric \"step\")", skipped);
    printf("\n");
    return 0;
}
