#include "train/train.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>
#include "common.h"
#include "dist/dist.h"
#include "data/augment.h"
#include "io/safetensors.h"
#include "loss/dispersive.h"
#include "train/step.h"
#include "data/data.h"
#include "io/tfevents.h"
#include "rng.h"
#include "model/checkpoint.h"
#include "train/monitor.h"
#include "train/train_eval.h"

// Everything a run holds between steps.
typedef struct {
    TrainConfig *cfg;
    DataSource *src;                         // the training split (data/data.h), read on demand
    DataLoader *loader;                      // its global batches in the seeded order, fetched in the background
    char *dataset_json;                      // its description, recorded in every checkpoint ("dataset")
    TfEvents *tb;                            // TensorBoard events beside the log (rank 0), or NULL
    Dit *model;
    const Ops *ops;                          // the device's op table at the run's precision
    Objective obj;
    Pca *pca;                                // ldae: the tokenizer (embedded in every checkpoint)
    OptimState opt;
    int64_t step;                            // steps completed
    StepBatch batch;                         // the step's buffers: host twin filled by make_batch, then uploaded
    DispSetup disp;
    char ckpt_path[600], log_path[600];
    FILE *log;
    TrainEval *eval;                         // --eval-every, or NULL
    Monitor *mon;                            // the Dispersive mechanism monitor
    int skipped_in_a_row;                    // --nonfinite skip: consecutive skipped updates
    // data parallel (src/dist): this process's rank among `ranks`; it trains rows [rank*B, (rank+1)*B) of every
    // global batch (B = local_batch); rank 0 alone logs, evaluates and writes checkpoints
    int rank, ranks, local_batch, lead;
    float *t_all, *noise_all;                // the global batch's t and noise (every rank draws them all)
    float *host_grads;                       // the all-reduce's host scratch
} Run;

// Every write to log.jsonl is checked: a log that cannot be written (a full disk) stops the run, whose last
// checkpoint stays as it was.
static void log_flush(Run *r) {
    if (!r->log) return;
    if (fflush(r->log) != 0 || ferror(r->log))
        ddm_fatal("cannot write the log '%s': %s; stopped (the last checkpoint '%s' is kept)", r->log_path,
                  strerror(errno), r->ckpt_path);
}

// One log line: composed in memory (log_begin gives a stream to print it into), then written to log.jsonl and as
// TensorBoard scalars (log_end).
typedef struct { FILE *f; char *buf; size_t len; } LogLine;
static void log_begin(LogLine *l) {   // the stream writes into *l: l must outlive it
    memset(l, 0, sizeof *l);
    l->f = open_memstream(&l->buf, &l->len);
    if (!l->f) ddm_fatal("out of memory composing a log line");
}
static void log_end(Run *r, LogLine *l) {
    fclose(l->f);
    if (r->log) {
        fputs(l->buf, r->log);
        log_flush(r);
    }
    if (r->tb) tfevents_log_json(r->tb, l->buf, "train/");
    free(l->buf);
}

typedef struct { float loss, diff, disp, grad_norm, lr; double disp_seconds; int skipped; } StepStats;

static volatile int g_stop = 0;   // set by SIGINT / SIGTERM once training runs (common.h: ddm_on_interrupt)

// ---------------------------------------------------------------- data

// Fills the host side of the batch (x, y, t, noise) for this step from streams derived from (seed, step) alone:
// every rank draws the whole global batch's random numbers in the single-process order and keeps its own rows,
// so the ranks together train on exactly the samples one process would.
static void make_batch(Run *r, int64_t step) {
    const TrainConfig *c = r->cfg;
    const DataSource *d = r->src;
    StepBatch *b = &r->batch;
    int B = c->batch, C = d->c, H = d->h, W = d->w, first = r->rank * r->local_batch, last = first + r->local_batch;
    long n = (long)C * H * W;
    const int32_t *labels;
    const float *raw = data_loader_batch(r->loader, step, &labels, NULL);   // [B, C, H, W], the seeded order
    Rng rng;
    rng_init(&rng, c->seed, (uint64_t)step + 1);
    for (int j = 0; j < B; j++) {
        int flip = c->flip && rng_uniform(&rng) < 0.5f;
        CropBox whole = {0, 0, (float)H, (float)W};   // resizes to an exact copy (or mirror)
        CropBox box = c->crop_scale > 0 ? crop_box_sample(&rng, H, W, c->crop_scale) : whole;
        int label = 0;
        if (c->model.num_classes > 0) {
            int drop = rng_uniform(&rng) < c->label_dropout;
            label = drop ? c->model.num_classes : labels[j];
        }
        if (j < first || j >= last) continue;
        crop_resize(raw + (long)j * n, b->h_x + (j - first) * n, C, H, W, box, flip);
        b->h_y[j - first] = label;
    }
    objective_sample_t(&r->obj, &rng, r->t_all, B);
    rng_normal_fill(&rng, r->noise_all, B * n);
    memcpy(b->h_t, r->t_all + first, (size_t)r->local_batch * sizeof(float));
    memcpy(b->h_noise, r->noise_all + (size_t)first * n, (size_t)r->local_batch * n * sizeof(float));
}

// ---------------------------------------------------------------- optimisation

static float lr_at(const TrainConfig *c, int64_t step) {
    if (c->warmup > 0 && step < c->warmup) return c->lr * (float)(step + 1) / c->warmup;
    if (strcmp(c->schedule, "cosine") == 0) {
        double span = c->steps - c->warmup, prog = span > 0 ? (step - c->warmup) / span : 1;
        if (prog > 1) prog = 1;
        return (float)(c->lr_min + 0.5 * (c->lr - c->lr_min) * (1 + cos(M_PI * prog)));
    }
    return c->lr;
}

// ---------------------------------------------------------------- one step

// What is not finite in a step whose loss or gradient norm is not: a loss part, or the first parameter tensor
// whose gradient holds a NaN or an infinity (downloaded: this is the failure path only).
static void describe_nonfinite(const Run *r, const StepStats *s, char *what, size_t n) {
    if (!isfinite(s->diff)) { snprintf(what, n, "the diffusion loss is %g", s->diff); return; }
    if (!isfinite(s->disp)) { snprintf(what, n, "the Dispersive Loss is %g", s->disp); return; }
    const Dit *m = r->model;
    float *g = xmalloc(m->total * sizeof(float));
    ops_download_f32(m->ops, g, m->grads, m->total);
    snprintf(what, n, "the gradient norm is %g", s->grad_norm);
    for (int i = 0; i < m->n_params; i++) {
        const ParamInfo *p = &m->info[i];
        size_t k = 0;
        while (k < p->numel && isfinite(g[p->offset + k])) k++;
        if (k < p->numel) {
            snprintf(what, n, "the gradient of %s is %g at element %zu", p->name, g[p->offset + k], k);
            break;
        }
    }
    free(g);
}

static StepStats train_step(Run *r) {
    const TrainConfig *c = r->cfg;
    StepStats s = {0};
    make_batch(r, r->step);
    step_upload(&r->batch, r->model, r->local_batch);
    LossParts lp = step_loss_and_grads(r->model, &r->obj, &r->disp, &r->batch, r->local_batch, NULL);
    if (dist_reduces()) {   // the mean over the ranks: gradients (the same bits everywhere) and the logged losses
        dist_mean_dev(r->ops, r->model->grads, r->model->total, r->host_grads);
        double v[3] = {lp.diff, lp.disp, lp.total};
        dist_mean_host(v, 3);
        lp.diff = (float)v[0]; lp.disp = (float)v[1]; lp.total = (float)v[2];
    }
    s.diff = lp.diff; s.disp = lp.disp; s.loss = lp.total; s.disp_seconds = lp.disp_seconds;
    s.grad_norm = optim_clip(r->model, c->clip);
    s.lr = lr_at(c, r->step);
    if (!isfinite(s.loss) || !isfinite(s.grad_norm)) {   // --nonfinite: stop, or skip the update (a limited number of times)
        char what[256];
        describe_nonfinite(r, &s, what, sizeof what);
        int skip = !strcmp(c->nonfinite, "skip");
        if (!skip || ++r->skipped_in_a_row > c->nonfinite_limit)
            ddm_fatal("non-finite loss or gradient at step %lld: %s%s; stopped. The last good checkpoint '%s' is kept; "
                      "try a lower --lr, --clip 1%s",
                      (long long)r->step + 1, what, skip ? " (again: --nonfinite-limit reached)" : "", r->ckpt_path,
                      skip ? "" : " or --nonfinite skip");
        if (r->lead) {
            fprintf(stderr, "%sddm train: warning: step %lld: %s; update skipped (%d in a row, limit %d)\n",
                    isatty(fileno(stderr)) ? "\r\033[K" : "", (long long)r->step + 1, what, r->skipped_in_a_row,
                    c->nonfinite_limit);
            LogLine l;
            log_begin(&l);
            fprintf(l.f, "{\"step\":%lld,\"skipped\":\"%s\"}\n", (long long)r->step + 1, what);
            log_end(r, &l);
        }
        s.skipped = 1;
        r->step++;
        return s;
    }
    r->skipped_in_a_row = 0;
    optim_adamw(r->model, &r->opt, r->step, s.lr, c->beta1, c->beta2, c->adam_eps, c->weight_decay);
    optim_ema(r->model, &r->opt, c->ema_decay);
    r->step++;
    return s;
}

// ---------------------------------------------------------------- set-up, logging, checkpoints

// --keep-every: is this step a milestone whose checkpoint is kept as ckpt_<step>.safetensors?
static int keep_due(const TrainConfig *c, int64_t step) { return c->keep_every > 0 && step % c->keep_every == 0; }

static int cmp_desc(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

// --keep-last N: the N most recent checkpoints stay as ckpt_<step>.safetensors (hard links to what was just
// written, so no second write) and older ones go — only after the newest is committed, and never a --keep-every
// milestone (which counts among the N when it is one of the most recent) or ckpt.safetensors itself.
static void keep_last(Run *r, const CheckpointOut *co) {
    const TrainConfig *c = r->cfg;
    char path[700];
    snprintf(path, sizeof path, "%s/ckpt_%lld.safetensors", c->out_dir, (long long)r->step);
    if (!file_exists(path) && link(r->ckpt_path, path) != 0) checkpoint_save(path, co);
    DIR *dir = opendir(c->out_dir);
    if (!dir) return;
    int64_t *steps = NULL;
    int n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        long long st;
        char tail[32];
        if (sscanf(e->d_name, "ckpt_%lld.safetens%31s", &st, tail) != 2 || strcmp(tail, "ors")) continue;
        if (n == cap) steps = xrealloc(steps, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *steps);
        steps[n++] = st;
    }
    closedir(dir);
    qsort(steps, (size_t)n, sizeof *steps, cmp_desc);
    for (int i = c->keep_last; i < n; i++) {
        if (keep_due(c, steps[i])) continue;
        snprintf(path, sizeof path, "%s/ckpt_%lld.safetensors", c->out_dir, (long long)steps[i]);
        unlink(path);
    }
    free(steps);
}

static void save_checkpoint(Run *r) {
    if (r->ranks > 1) {   // the replicas must be bit-identical: checked at every checkpoint, on every rank
        ops_download_f32(r->ops, r->host_grads, r->model->params, r->model->total);
        dist_check_same(r->host_grads, r->model->total * sizeof(float), "the model's weights");
    }
    if (!r->lead) return;
    char *json = train_config_to_json(r->cfg);
    CheckpointOut co = {.model = r->model, .ema = r->opt.ema, .opt_m = r->opt.m, .opt_v = r->opt.v,
                        .step = r->step, .seed = r->cfg->seed, .config_json = json, .pca = r->pca,
                        .dataset_json = r->dataset_json};
    checkpoint_save(r->ckpt_path, &co);
    if (keep_due(r->cfg, r->step)) {   // a milestone to probe or sample later
        char kept[700];
        snprintf(kept, sizeof kept, "%s/ckpt_%lld.safetensors", r->cfg->out_dir, (long long)r->step);
        checkpoint_save(kept, &co);
    }
    if (r->cfg->keep_last > 0) keep_last(r, &co);
    free(json);
}

// On resume, drop log lines past the checkpoint's step (a crash may have logged steps that are redone).
static void trim_log(const char *path, int64_t step) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    AtomicFile af = atomic_open(path);
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"step\":");
        if (p && strtoll(p + 7, NULL, 10) > step) continue;
        fputs(line, af.f);
    }
    fclose(f);
    atomic_commit(&af);
}

static void setup_dispersive(Run *r) {
    const TrainConfig *c = r->cfg;
    int variant = -1, blocks[DISP_MAX_BLOCKS], n = 0;
    if (strcmp(c->disp_variant, "none") != 0 && c->disp_lambda != 0) {
        variant = dispersive_variant_parse(c->disp_variant);
        if (variant < 0)
            ddm_fatal("--disp '%s': expected none, infonce_l2, infonce_cos, hinge or covariance", c->disp_variant);
        int seen = c->disp_gather ? c->batch : r->local_batch;   // the batch the loss sees
        if (seen < 2 && r->lead)
            fprintf(stderr, "ddm: warning: Dispersive Loss needs a batch of at least 2; with %s batch %d it is 0\n",
                    r->ranks > 1 && !c->disp_gather ? "a per-rank" : "a", seen);
        n = train_disp_blocks(c, blocks);
    }
    disp_setup_init(&r->disp, r->model, variant, c->disp_lambda, c->disp_tau, c->disp_eps, blocks, n, r->local_batch);
    if (c->disp_gather) disp_setup_gather(&r->disp, r->model, r->ranks, r->rank, r->local_batch);
    // The monitor watches the Dispersive blocks, or --monitor-blocks; with the loss off, the blocks it would use.
    TrainConfig view = *c;
    if (c->monitor_blocks[0]) snprintf(view.disp_blocks, sizeof view.disp_blocks, "%s", c->monitor_blocks);
    int mb[DISP_MAX_BLOCKS], nm = train_disp_blocks(&view, mb);
    if (nm > MONITOR_MAX_BLOCKS) ddm_fatal("--monitor-blocks: at most %d blocks", MONITOR_MAX_BLOCKS);
    r->mon = monitor_create(r->model, mb, nm, variant, c->disp_lambda, n, c->disp_tau, c->disp_eps,
                            r->lead ? c->erank_every : 0, c->erank_n, r->src, &r->obj, r->local_batch);
    r->disp.mon = r->mon;
}

static void setup_buffers(Run *r) {
    long n = (long)r->src->c * r->src->h * r->src->w;
    step_batch_init(&r->batch, r->model, r->local_batch);
    r->t_all = xmalloc((size_t)r->cfg->batch * sizeof(float));
    r->noise_all = xmalloc((size_t)r->cfg->batch * n * sizeof(float));
    if (dist_reduces()) r->host_grads = xmalloc(r->model->total * sizeof(float));
}

static void setup_model(Run *r) {
    TrainConfig *c = r->cfg;
    r->model = dit_create(&c->model, r->ops);
    if (c->resume[0]) {
        StFile *f = checkpoint_open(c->resume);
        checkpoint_load_tensors(f, r->model, "", r->model->params, 0);
        optim_init(&r->opt, r->model);
        checkpoint_load_tensors(f, r->model, "ema.", r->opt.ema, 0);
        if (!checkpoint_load_tensors(f, r->model, "opt.m.", r->opt.m, 1) ||
            !checkpoint_load_tensors(f, r->model, "opt.v.", r->opt.v, 1))
            ddm_fatal("%s: has no optimizer state (opt.m.*, opt.v.*): cannot resume training from it", c->resume);
        r->step = checkpoint_step(f);
        if (r->step > c->steps)
            ddm_fatal("%s is at step %lld, past --steps %d: give the total number of steps to train to (at least %lld)",
                      c->resume, (long long)r->step, c->steps, (long long)r->step);
        st_free(f);
    } else {
        dit_init(r->model, c->seed);
        optim_init(&r->opt, r->model);
    }
}

static void check_data_matches(const Run *r) {
    const DitConfig *m = &r->cfg->model;
    const DataSource *d = r->src;
    if (d->c != m->in_channels || d->h != m->height || d->w != m->width)
        ddm_fatal("data '%s' has samples of %dx%dx%d but the model expects %dx%dx%d", d->path, d->c, d->h, d->w,
                  m->in_channels, m->height, m->width);
    if (m->num_classes > 0 && (!d->labels || d->num_classes > m->num_classes))
        ddm_fatal("data '%s' has %d classes but the model has %d%s", d->path, d->num_classes, m->num_classes,
                  d->labels ? "" : " (it has no labels: train with --unconditional)");
    if (d->n < 1) ddm_fatal("data '%s' holds no samples", d->path);
}

static void log_step(Run *r, const StepStats *s, double img_s, double disp_share, int final) {
    const TrainConfig *c = r->cfg;
    if (!r->lead) return;
    LogLine l;
    log_begin(&l);
    fprintf(l.f,
            "{\"step\":%lld,\"loss\":%.6g,\"loss_diff\":%.6g,\"loss_disp\":%.6g,\"grad_norm\":%.6g,\"lr\":%.6g,"
            "\"img_per_s\":%.4g,\"disp_time_share\":%.4g",
            (long long)r->step, s->loss, s->diff, s->disp, s->grad_norm, s->lr, img_s, disp_share);
    if (r->mon->due) monitor_write_step(r->mon, l.f);
    fputs("}\n", l.f);
    log_end(r, &l);
    double eta = img_s > 0 ? (double)(c->steps - r->step) * c->batch / img_s : 0;
    int tty = isatty(fileno(stderr));
    fprintf(stderr, "%sstep %6lld/%d  loss %.4f  diff %.4f  disp %+.4f (%.1f%% of step)  |g| %.3f  lr %.2e  "
            "%.1f img/s  eta %dm%02ds%s",
            tty ? "\r\033[K" : "", (long long)r->step, c->steps, s->loss, s->diff, s->disp, 100 * disp_share,
            s->grad_norm, s->lr, img_s, (int)eta / 60, (int)eta % 60, tty && !final ? "" : "\n");
    fflush(stderr);
}

static void evaluate(Run *r) {
    double t0 = now_seconds();
    enum { GRID = 64 };   // the TensorBoard sample grid: the evaluation's first samples
    const DitConfig *m = &r->cfg->model;
    float *grid = r->tb ? xmalloc((size_t)GRID * m->in_channels * m->height * m->width * sizeof(float)) : NULL;
    double fd = train_eval_fd(r->eval, r->model, r->opt.ema, r->cfg, grid, GRID);
    if (grid) {   // grey, RGB, or the first channel of anything else
        int n = GRID < r->cfg->eval_n ? GRID : r->cfg->eval_n, show = m->in_channels == 3 ? 3 : 1;
        long hw = (long)m->height * m->width;
        if (m->in_channels != show)
            for (int i = 0; i < n; i++) memmove(grid + i * hw, grid + i * m->in_channels * hw, hw * sizeof(float));
        tfevents_image_grid(r->tb, "samples", r->step, grid, n, show, m->height, m->width, 8, -1, 1);
        free(grid);
    }
    double dt = now_seconds() - t0;
    LogLine l;
    log_begin(&l);
    fprintf(l.f, "{\"step\":%lld,\"fd\":%.6g,\"eval_n\":%d,\"eval_seconds\":%.4g}\n", (long long)r->step, fd,
            r->cfg->eval_n, dt);
    log_end(r, &l);
    fprintf(stderr, "%sstep %6lld  FD-CNN of %d EMA samples: %.4f  (%.1f s)\n", isatty(fileno(stderr)) ? "\r\033[K" : "",
            (long long)r->step, r->cfg->eval_n, fd, dt);
}

static void report_setup(const Run *r, int kind) {
    const TrainConfig *c = r->cfg;
    char line[3000];
    data_describe_line(r->src, line, sizeof line);
    fprintf(stderr, "ddm train: data: %s\n", line);
    fprintf(stderr, "ddm train: %s, %d blocks x %d hidden, %d heads, patch %d, %.2fM parameters; %s; dispersive %s; "
            "%d images; steps %lld -> %d; device %s, precision %s\n", c->model.num_classes ? "class-conditional" : "unconditional",
            c->model.depth, c->model.hidden, c->model.heads, c->model.patch,
            dit_trainable_count(r->model) / 1e6, c->objective, c->disp_variant, (int)r->src->n, (long long)r->step, c->steps,
            ops_device_label(r->ops), c->precision);
    if (kind == OBJ_DENOISE)
        fprintf(stderr, "ddm train: denoise: noise %s, tokenizer %s, target %s, pca-output %s, loss-weight %s\n",
                c->noise, c->tokenizer, c->target, c->pca_output, c->loss_weight);
    if (c->single_t >= 0) fprintf(stderr, "ddm train: single noise level t = %g\n", c->single_t);
    if (r->pca)
        fprintf(stderr, "ddm train: %s: PCA tokenizer patch %d, D = %d, d = %d (%s); encoder = blocks 0..%d\n",
                kind == OBJ_LDAE ? "l-DAE" : "denoise", r->pca->patch, r->pca->D, r->pca->d, r->pca->whitened ? "whitened" : "not whitened", c->encoder_depth - 1);
    // The EMA starts at the initial (random) weights, as in SiT's reference code (no warm-up), and keeps
    // decay^steps of them: in a short run that share shows in the EMA samples as noise (docs/demo.md measured
    // FD-CNN 20.9 with --ema 0.999 over 2400 steps, 9% of the initial weights left, against 4.7 for the raw weights).
    double init_share = pow(c->ema_decay, (double)c->steps);
    if (init_share > 0.01)
        fprintf(stderr, "ddm train: note: --ema %g over %d steps leaves %.1f%% of the initial random weights in the EMA "
                "weights that sample and eval use; --ema %.4g or lower leaves under 1%% (or sample with --raw)\n",
                c->ema_decay, c->steps, 100 * init_share, pow(0.01, 1.0 / c->steps));
    if (r->ranks > 1)
        fprintf(stderr, "ddm train: data parallel (%s): global batch %d, %d per rank; Dispersive Loss on %s\n",
                dist_describe(), c->batch, r->local_batch,
                c->disp_gather ? "the global batch (--disp-gather)" : "each rank's own batch");
}

int train_run(TrainConfig *c) {
    Run r = {.cfg = c, .rank = dist_rank(), .ranks = dist_size()};
    r.lead = r.rank == 0;
    if (c->batch % r.ranks)
        ddm_fatal("--batch %d is the global batch: it must divide evenly among the %d ranks", c->batch, r.ranks);
    r.local_batch = c->batch / r.ranks;
    if (r.lead && make_dirs(c->out_dir) != 0)
        ddm_fatal("--out '%s': cannot create the directory: %s", c->out_dir, strerror(errno));
    // Checkpoint writes killed in an earlier run (SIGKILL mid-write) left their temp files: rank 0 alone writes here,
    // so only it cleans up.
    int stale = r.lead ? atomic_remove_stale(c->out_dir) : 0;
    if (stale) fprintf(stderr, "ddm train: removed %d temp file%s left in %s by an earlier run that was killed\n", stale,
                       stale == 1 ? "" : "s", c->out_dir);
    snprintf(r.ckpt_path, sizeof r.ckpt_path, "%s/ckpt.safetensors", c->out_dir);
    snprintf(r.log_path, sizeof r.log_path, "%s/log.jsonl", c->out_dir);
    train_objective_setup(c, &r.obj);
    const char *err;
    if (!c->device[0]) snprintf(c->device, sizeof c->device, "%s", ops_default_device());
    const char *precision = ops_resolve_precision(c->device, c->precision);   // "auto" resolved: what is recorded
    if (precision != c->precision) snprintf(c->precision, sizeof c->precision, "%s", precision);
    r.ops = ops_select(c->device, c->precision, &err);
    if (!r.ops) ddm_fatal("%s", err);
    int kind = r.obj.kind;
    if (objective_uses_pca(&r.obj)) {
        // the tokenizer before the data, so that a bad file fails first; a resumed run uses the copy
        // embedded in its checkpoint (the file it was started with may be gone)
        if (c->resume[0]) {
            StFile *f = checkpoint_open(c->resume);
            r.pca = checkpoint_pca(f);
            st_free(f);
        }
        if (!r.pca && !c->pca[0])
            ddm_fatal(kind == OBJ_LDAE ? "--objective ldae needs --pca FILE (a PCA tokenizer written by ddm pca)"
                                       : "--tokenizer pca needs --pca FILE (a PCA tokenizer written by ddm pca)");
        if (!r.pca) r.pca = pca_load(c->pca);
    } else if (c->pca[0]) {
        if (kind == OBJ_DENOISE) ddm_fatal("--pca is only used with --tokenizer pca (got --tokenizer %s)", c->tokenizer);
        ddm_fatal("--pca is only used with --objective ldae or --tokenizer pca (got --objective %s)", c->objective);
    }
    r.src = data_open(&c->data, "train", 1);
    r.dataset_json = data_describe_json(r.src);
    if (!c->resume[0]) {   // a fresh model takes its image shape and classes from the data
        c->model.in_channels = r.src->c;
        c->model.height = r.src->h;
        c->model.width = r.src->w;
        if (c->model.num_classes) c->model.num_classes = r.src->num_classes;
        if (kind == OBJ_LDAE) c->model.num_classes = 0;   // l-DAE is unconditional
    }
    train_config_check(c, "");
    c->encoder_depth = train_encoder_depth(c);
    check_data_matches(&r);
    if (r.pca) {
        char what[600];
        snprintf(what, sizeof what, "--pca %s", c->pca[0] ? c->pca : "(embedded in the checkpoint)");
        objective_set_pca(&r.obj, r.pca, r.src->c, r.src->h, r.src->w, what);
    }
    setup_model(&r);
    r.loader = data_loader_new(r.src, c->seed, c->batch, 2);
    objective_bind(&r.obj, r.ops, r.local_batch);
    setup_buffers(&r);
    setup_dispersive(&r);
    if (r.lead) {   // rank 0 alone evaluates, logs and writes checkpoints
        r.eval = train_eval_create(c, r.src);
        if (c->resume[0]) trim_log(r.log_path, r.step);
        r.log = c->resume[0] ? fopen(r.log_path, "a") : fopen(r.log_path, "w");
        if (!r.log) ddm_fatal("cannot write the log '%s'", r.log_path);
        if (c->tensorboard) r.tb = tfevents_open(c->out_dir, c->resume[0] ? r.step : 0);
        char conf[700];
        snprintf(conf, sizeof conf, "%s/config.conf", c->out_dir);
        train_config_write(c, conf);
    }
    if (r.lead) report_setup(&r, kind);
    ddm_on_interrupt(&g_stop);   // from here on a signal stops the loop, which saves a checkpoint
    double t_log = now_seconds(), disp_s = 0;
    int64_t step_log = r.step;
    StepStats s = {0};
    while (r.step < c->steps && !dist_any(g_stop)) {
        r.mon->due = (r.step + 1) % c->log_every == 0 || r.step + 1 == c->steps;
        s = train_step(&r);
        disp_s += s.disp_seconds;
        int final = r.step == c->steps;
        if (!s.skipped && (r.step % c->log_every == 0 || final)) {
            double dt = now_seconds() - t_log;
            log_step(&r, &s, (r.step - step_log) * c->batch / dt, disp_s / dt, final);
            t_log = now_seconds(); disp_s = 0; step_log = r.step;
        }
        if (r.lead && c->erank_every > 0 && (r.step % c->erank_every == 0 || final)) {
            LogLine l;
            log_begin(&l);
            fprintf(l.f, "{\"step\":%lld", (long long)r.step);
            monitor_write_erank(r.mon, r.model, r.local_batch, l.f);
            fputs("}\n", l.f);
            log_end(&r, &l);
        }
        if (r.step % c->ckpt_every == 0 || final || keep_due(c, r.step)) save_checkpoint(&r);
        if (r.eval && (r.step % c->eval_every == 0 || final)) {   // (rank 0 only; the others wait for it)
            evaluate(&r);
            t_log = now_seconds(); disp_s = 0; step_log = r.step;   // evaluation time is not training time
        }
    }
    int stopped = r.step < c->steps;
    if (stopped) {
        save_checkpoint(&r);
        if (r.lead)
            fprintf(stderr, "\nddm train: interrupted at step %lld; checkpoint saved to %s (continue with --resume)\n",
                    (long long)r.step, r.ckpt_path);
    } else if (r.lead) {
        fprintf(stderr, "ddm train: done; checkpoint %s, log %s\n", r.ckpt_path, r.log_path);
    }
    if (r.lead && r.ranks > 1)
        fprintf(stderr, "ddm train: the %d replicas' weights were bit-identical at every checkpoint\n", r.ranks);
    if (r.log && fclose(r.log) != 0) ddm_fatal("cannot write the log '%s': %s", r.log_path, strerror(errno));
    train_eval_free(r.eval);
    monitor_free(r.mon);
    disp_setup_free(&r.disp, r.model);
    step_batch_free(&r.batch);
    objective_unbind(&r.obj);
    optim_free(&r.opt, r.model);
    dit_free(r.model);
    tfevents_close(r.tb);
    data_loader_free(r.loader);
    data_close(r.src);
    free(r.dataset_json);
    free(r.t_all);
    free(r.noise_all);
    free(r.host_grads);
    pca_free(r.pca);
    return stopped ? 130 : 0;
}
