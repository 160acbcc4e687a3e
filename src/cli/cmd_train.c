// ddm train
#include <string.h>
#include "cli/args.h"
#include "cli/cli.h"
#include "common.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"
#include "train/train.h"

int cmd_train(int argc, char **argv) {
    TrainConfig c;
    train_config_defaults(&c);
    char variant[16] = "";
    int unconditional = 0, threads = 0;
    ArgSpec specs[] = {
        {"model", ARG_STR, variant, sizeof variant, 0, 0, "named variant S/2 .. XL/8 (sets depth/hidden/heads/patch)", 0},
        {"depth", ARG_INT, &c.model.depth, 0, 1, 256, "number of transformer blocks", 0},
        {"hidden", ARG_INT, &c.model.hidden, 0, 4, 16384, "hidden size (multiple of 4 and of heads)", 0},
        {"heads", ARG_INT, &c.model.heads, 0, 1, 256, "attention heads", 0},
        {"patch", ARG_INT, &c.model.patch, 0, 1, 64, "patch size", 0},
        {"learn-sigma", ARG_BOOL, &c.model.learn_sigma, 0, 0, 1, "double the output channels (ignored by the loss)", 0},
        {"unconditional", ARG_BOOL, &unconditional, 0, 0, 1, "no class labels", 0},
        {"label-dropout", ARG_FLOAT, &c.label_dropout, 0, 0, 1, "probability of the null label (classifier-free guidance)", 0},
        {"objective", ARG_STR, c.objective, sizeof c.objective, 0, 0, "sit_linear | sit_gvp | ddpm | ldae (l-DAE: needs --pca, unconditional) | denoise (the l-DAE trajectory, next five flags)", 0},
        {"noise", ARG_STR, c.noise, sizeof c.noise, 0, 0, "denoise: ddpm_linear (default) | gamma2_linear | sigma_linear (gamma 1, sigma 0..sqrt 2)", 0},
        {"tokenizer", ARG_STR, c.tokenizer, sizeof c.tokenizer, 0, 0, "denoise: pixel (default) | pca (noise in the PCA latent of --pca; x_t by inverse PCA)", 0},
        {"target", ARG_STR, c.target, sizeof c.target, 0, 0, "denoise: noise (default) | latent (clean PCA latent) | image (the original image)", 0},
        {"pca-output", ARG_STR, c.pca_output, sizeof c.pca_output, 0, 0, "denoise: image (default: loss in pixels) | latent (loss on the output's PCA latent)", 0},
        {"loss-weight", ARG_STR, c.loss_weight, sizeof c.loss_weight, 0, 0, "denoise: mse (default) | ldae (lambda_t, w_i = 1 / 0.1 in the full PCA basis)", 0},
        {"single-noise-level", ARG_FLOAT, &c.single_t, 0, -1, 1000, "every sample uses this t (-1 = sampled, the default)", 0},
        {"pca", ARG_STR, c.pca, sizeof c.pca, 0, 0, "--objective ldae or --tokenizer pca: PCA tokenizer of ddm pca (embedded in the checkpoint)", 0},
        {"encoder-depth", ARG_INT, &c.encoder_depth, 0, 0, 256, "blocks in the encoder (0 = depth/2); ddm probe --block encoder reads its last", 0},
        {"disp", ARG_STR, c.disp_variant, sizeof c.disp_variant, 0, 0, "Dispersive Loss: none | infonce_l2 | infonce_cos | hinge | covariance", 0},
        {"disp-lambda", ARG_FLOAT, &c.disp_lambda, 0, 0, 1e6, "weight of the Dispersive Loss", 0},
        {"disp-tau", ARG_FLOAT, &c.disp_tau, 0, 1e-6, 1e6, "temperature (InfoNCE variants)", 0},
        {"disp-eps", ARG_FLOAT, &c.disp_eps, 0, 0, 1e6, "margin (hinge)", 0},
        {"disp-blocks", ARG_STR, c.disp_blocks, sizeof c.disp_blocks, 0, 0, "blocks read: depth/4 | last | all | N[,M..] (0-based)", 0},
        {"steps", ARG_INT, &c.steps, 0, 1, 1e9, "total training steps", 0},
        {"batch", ARG_INT, &c.batch, 0, 1, 65536, "batch size", 0},
        {"lr", ARG_FLOAT, &c.lr, 0, 0, 10, "peak learning rate", 0},
        {"beta1", ARG_FLOAT, &c.beta1, 0, 0, 0.999999, "AdamW beta1", 0},
        {"beta2", ARG_FLOAT, &c.beta2, 0, 0, 0.999999, "AdamW beta2", 0},
        {"wd", ARG_FLOAT, &c.weight_decay, 0, 0, 10, "AdamW weight decay", 0},
        {"adam-eps", ARG_FLOAT, &c.adam_eps, 0, 1e-12, 1, "AdamW epsilon", 0},
        {"clip", ARG_FLOAT, &c.clip, 0, 0, 1e6, "gradient clipping max norm (0 = off)", 0},
        {"schedule", ARG_STR, c.schedule, sizeof c.schedule, 0, 0, "constant | cosine (after --warmup)", 0},
        {"warmup", ARG_INT, &c.warmup, 0, 0, 1e9, "linear warmup steps", 0},
        {"lr-min", ARG_FLOAT, &c.lr_min, 0, 0, 10, "final learning rate of the cosine schedule", 0},
        {"ema", ARG_FLOAT, &c.ema_decay, 0, 0, 1, "EMA decay per step", 0},
        {"seed", ARG_U64, &c.seed, 0, 0, 1.8e19, "random seed", 0},
        {"data", ARG_STR, c.data, sizeof c.data, 0, 0, "directory with Fashion-MNIST IDX files", 0},
        {"flip", ARG_BOOL, &c.flip, 0, 0, 1, "random horizontal flips", 0},
        {"crop-scale", ARG_FLOAT, &c.crop_scale, 0, 0, 1, "random resized crops (MAE-style): area fraction uniform in [S, 1], aspect 3/4..4/3, resized back bilinearly (0 = off)", 0},
        {"out", ARG_STR, c.out_dir, sizeof c.out_dir, 0, 0, "run directory (ckpt.safetensors, log.jsonl)", 0},
        {"log-every", ARG_INT, &c.log_every, 0, 1, 1e9, "steps between log lines", 0},
        {"ckpt-every", ARG_INT, &c.ckpt_every, 0, 1, 1e9, "steps between checkpoints", 0},
        {"keep-every", ARG_INT, &c.keep_every, 0, 0, 1e9, "also keep a copy ckpt_<step>.safetensors every this many steps (0 = none)", 0},
        {"eval-every", ARG_INT, &c.eval_every, 0, 0, 1e9, "steps between sample-quality evaluations, FD-CNN of the EMA model logged as \"fd\" (0 = off)", 0},
        {"eval-classifier", ARG_STR, c.eval_classifier, sizeof c.eval_classifier, 0, 0, "--eval-every: the domain classifier of `ddm classifier train`", 0},
        {"eval-n", ARG_INT, &c.eval_n, 0, 2, 1e7, "--eval-every: samples (and reference images) per evaluation", 0},
        {"eval-steps", ARG_INT, &c.eval_steps, 0, 1, 100000, "--eval-every: Heun steps per sample (DDPM: ancestral steps)", 0},
        {"monitor-blocks", ARG_STR, c.monitor_blocks, sizeof c.monitor_blocks, 0, 0, "blocks whose Dispersive mechanism is logged (feature rms, share of active pairs, Dispersive / diffusion gradient norms, effective rank), as --disp-blocks (default: the --disp-blocks blocks, also with --disp none)", 0},
        {"erank-every", ARG_INT, &c.erank_every, 0, 0, 1e9, "steps between effective-rank measurements of the monitored blocks on a fixed batch (0 = off)", 0},
        {"erank-n", ARG_INT, &c.erank_n, 0, 2, 100000, "images in the fixed effective-rank batch", 0},
        {"resume", ARG_STR, c.resume, sizeof c.resume, 0, 0, "continue from this checkpoint (its config wins; the run's total --steps too unless given)", 0},
        {"threads", ARG_INT, &threads, 0, 0, 1024, "threads (0 = all cores)", 0},
        {"precision", ARG_STR, c.precision, sizeof c.precision, 0, 0, CLI_PRECISION_HELP "; weights, optimizer state and all other math stay fp32; recorded in the checkpoint (given with --resume: overrides it)", 0},
    };
    ArgParser p = {"train", "Train a DiT/SiT on Fashion-MNIST, optionally with Dispersive Loss.", specs,
                   sizeof specs / sizeof specs[0]};
    args_parse(&p, argc, argv);
    cli_set_threads(threads);
    if (variant[0]) {   // explicit sizes override the named variant
        DitConfig given = c.model;
        if (!dit_variant_parse(variant, &c.model))
            ddm_fatal("--model '%s': expected S, B, L or XL with patch 2, 4 or 8, e.g. S/4", variant);
        if (args_seen(&p, "depth")) c.model.depth = given.depth;
        if (args_seen(&p, "hidden")) c.model.hidden = given.hidden;
        if (args_seen(&p, "heads")) c.model.heads = given.heads;
        if (args_seen(&p, "patch")) c.model.patch = given.patch;
    }
    if (unconditional) c.model.num_classes = 0;
    if (c.resume[0]) {
        // The checkpoint's config wins (bit-exact continuation); only how long and where the run goes may change.
        StFile *f = checkpoint_open(c.resume);
        TrainConfig r;
        if (!train_config_from_json(&r, checkpoint_config(f)))
            ddm_fatal("%s: its \"config\" metadata is not a valid ddm training config", c.resume);
        st_free(f);
        if (args_seen(&p, "steps")) r.steps = c.steps;   // otherwise the run's own total (and so its lr schedule)
        r.log_every = c.log_every; r.ckpt_every = c.ckpt_every; r.keep_every = c.keep_every;
        r.eval_every = c.eval_every; r.eval_n = c.eval_n; r.eval_steps = c.eval_steps;
        strcpy(r.eval_classifier, c.eval_classifier);
        strcpy(r.monitor_blocks, c.monitor_blocks); r.erank_every = c.erank_every; r.erank_n = c.erank_n;
        strcpy(r.out_dir, c.out_dir); strcpy(r.resume, c.resume);
        if (args_seen(&p, "precision")) strcpy(r.precision, c.precision);   // how to compute, not what
        c = r;
    }
    return train_run(&c);
}
