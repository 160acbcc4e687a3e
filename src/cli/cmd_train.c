// ddm train: the flags are the run configuration's field table (config/config.h), plus two conveniences.
#include <string.h>
#include "cli/cli.h"
#include "common.h"
#include "dist/dist.h"
#include <unistd.h>
#include "config/args.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "train/train.h"

int cmd_train(int argc, char **argv) {
    TrainConfig c;
    train_config_defaults(&c);
    char variant[16] = "";
    int unconditional = 0;
    enum { MAX_SPECS = 96 };
    ArgSpec specs[MAX_SPECS];
    int n = train_config_specs(&c, specs, MAX_SPECS - 2);
    specs[n++] = (ArgSpec){"model", ARG_STR, variant, sizeof variant, 0, 0,
                           "named variant S/2 .. XL/8 (sets depth/hidden/heads/patch)", 0, NULL};
    specs[n++] = (ArgSpec){"unconditional", ARG_BOOL, &unconditional, 0, 0, 1, "no class labels", 0, NULL};
    ArgParser p = {"train", "Train a DiT/SiT on Fashion-MNIST, optionally with Dispersive Loss.", specs, n};
    args_parse(&p, argc, argv);
    if (!c.threads && dist_local_size() > 1) {   // ranks sharing a machine share its cores
        int per = (int)sysconf(_SC_NPROCESSORS_ONLN) / dist_local_size();
        c.threads = per > 0 ? per : 1;
    }
    cli_set_threads(c.threads);
    if (variant[0]) {   // explicit sizes override the named variant
        DitConfig given = c.model;
        if (!dit_variant_parse(variant, &c.model))
            ddm_fatal("--model '%s': expected S, B, L or XL with patch 2, 4 or 8, e.g. S/4", variant);
        const char *sizes[] = {"depth", "hidden", "heads", "patch"};
        int *dst[] = {&c.model.depth, &c.model.hidden, &c.model.heads, &c.model.patch};
        int src[] = {given.depth, given.hidden, given.heads, given.patch};
        for (int i = 0; i < 4; i++) {
            if (args_seen(&p, sizes[i])) *dst[i] = src[i];
            else for (int k = 0; k < n; k++) if (!strcmp(specs[k].name, sizes[i])) specs[k].seen = 1;   // set by --model
        }
    }
    if (unconditional) c.model.num_classes = 0;
    if (c.resume[0]) {
        // The checkpoint's config wins (bit-exact continuation); only how long, where and how the run goes may change.
        StFile *f = checkpoint_open(c.resume);
        TrainConfig ck;
        if (!train_config_from_json(&ck, checkpoint_config(f), c.resume))
            ddm_fatal("%s: its \"config\" metadata is not a valid ddm training config", c.resume);
        st_free(f);
        if (unconditional && ck.model.num_classes) ddm_fatal("--unconditional: %s is a class-conditional run", c.resume);
        train_config_resume(&c, &ck, specs, n, c.resume);
    }
    return train_run(&c);
}
