// ddm: train, sample and check DiT/SiT diffusion transformers with Dispersive Loss.
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "common.h"
#include "dist/dist.h"

void cli_set_threads(int n) {
    if (n <= 0) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

const Ops *cli_ops(const char *device, const char *precision) {
    const char *err;
    const Ops *o = ops_select(device && *device ? device : ops_default_device(), precision, &err);
    if (!o) ddm_fatal("%s", err);
    return o;
}

static const struct { const char *name; int (*fn)(int, char **); const char *help; } commands[] = {
    {"train", cmd_train, "train a DiT/SiT (optionally with Dispersive Loss) and write checkpoints"},
    {"sample", cmd_sample, "draw samples from a checkpoint (SiT ODE/SDE, DDPM/DDIM) into a PNG grid / .npy"},
    {"forward", cmd_forward, "run the model once on given .npy inputs (parity checks against PyTorch)"},
    {"bench", cmd_bench, "time training and sampling on fixed configurations beside the PyTorch twin"},
    {"eval", cmd_eval, "Fréchet distance (domain-classifier features), KID, precision/recall of samples"},
    {"pca", cmd_pca, "fit a patch-wise PCA tokenizer (l-DAE) on patches of the training images"},
    {"probe", cmd_probe, "linear-probe and k-NN accuracy of a network's features (or a baseline)"},
    {"classifier", cmd_classifier, "train / evaluate the domain classifier whose features the FID uses"},
    {"export", cmd_export, "write a checkpoint's weights as safetensors for PyTorch's load_state_dict (official DiT/SiT)"},
    {"data", cmd_data, "describe a dataset as ddm reads it (any format), write its first samples, check every file"},
    {"tensorboard", cmd_tensorboard, "write a JSONL log (ddm train's log.jsonl) as a TensorBoard event file"},
    {"plot", cmd_plot, "line charts (PNG) of JSONL logs: loss curves, distance vs step"},
};

static void usage(void) {
    printf("usage: ddm <command> [flags]   (ddm <command> --help for its flags)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        printf("  %-12s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage();
        return argc < 2 ? 1 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            ddm_handle_interrupts(commands[i].name);   // from the start: no command dies without a word
            dist_init(&argc, &argv);
            if (dist_size() > 1 && strcmp(commands[i].name, "train"))
                ddm_fatal("ddm %s runs as one process (only ddm train is data-parallel): launch it without mpirun / srun",
                          commands[i].name);
            int rc = commands[i].fn(argc - 1, argv + 1);
            dist_finalize();
            return rc;
        }
    char names[256] = "";
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", commands[i].name);
    ddm_fatal("unknown command '%s' (commands: %s; see ddm --help)", argv[1], names);
}
