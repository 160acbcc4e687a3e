#!/usr/bin/env python3
"""Markdown tables of the studies in docs/ldae.md and docs/dispersive.md, read from their run directories.

    python3 tools/experiments/tables.py ldae runs/ldae
    python3 tools/experiments/tables.py ldae_long runs/ldae
    python3 tools/experiments/tables.py ldae_tuned runs/ldae
    python3 tools/experiments/tables.py dispersive runs/dispersive
    python3 tools/experiments/tables.py dispersive_long runs/dispersive_long   # also writes <run>/fd_curve.jsonl

Standard library only. Runs that are not finished yet are listed as such, not skipped silently.
"""
import json
import math
import os
import re
import sys

# (run name, paper step, ImageNet linear probe % from SPEC §1.2)
TRAJECTORY = [
    ("traj_01_dit_baseline", "DiT baseline (class-conditional; pixels, not VQGAN)", "57.5"),
    ("traj_02_no_class_conditioning", "remove class conditioning", "62.5"),
    (None, "remove VQGAN perceptual loss", "58.4"),
    (None, "remove adversarial loss (tokenizer = VAE)", "59.0"),
    ("traj_05_noise_schedule", "replace noise schedule (gamma_t^2 linear 1 -> 0)", "63.4"),
    ("traj_06_pca_tokenizer", "patch-wise PCA tokenizer", "65.1"),
    ("traj_07_predict_clean_data", "predict clean data (x0) instead of noise", "62.4"),
    ("traj_08_no_input_scaling", "remove input scaling (gamma_t = 1)", "63.6"),
    (None, "image input via inverse PCA (= row 8 in ddm)", "63.6"),
    ("traj_10_output_inverse_pca", "image output via inverse PCA", "63.9"),
    ("traj_11_ldae", "predict the original image = **l-DAE**", "64.5"),
    ("traj_ablation_single_noise_level", "ablation: single noise level (t = 500)", "61.5"),
]
BASELINES = [("base_pixels", "raw pixels (784-d)"), ("base_pca_d4", "PCA coefficients, patch 4, d = 4 (196-d)"),
             ("base_random", "randomly initialised l-DAE network, encoder block")]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def minutes(run_dir):
    """Wall minutes of the training command, without the time spent in --eval-every evaluations."""
    try:
        with open(os.path.join(run_dir, "train.done")) as f:
            seconds = int(f.read().strip())
    except (OSError, ValueError):
        return None
    try:
        with open(os.path.join(run_dir, "log.jsonl")) as f:
            seconds -= sum(json.loads(line).get("eval_seconds", 0) for line in f)
    except (OSError, ValueError):
        pass
    return seconds / 60


def probe_cells(run_dir):
    p = load(os.path.join(run_dir, "probe.json"))
    if not p:
        return ["not run", "", ""]
    return [f"{p['linear_top1']:.2f}", f"{p['knn_top1']:.2f}", f"{p['seconds'] / 60:.1f}"]


def ldae(root):
    print("| # | step | linear % | k-NN % | train min | probe min | ImageNet (paper) |")
    print("|---|---|---|---|---|---|---|")
    for i, (name, step, paper) in enumerate(TRAJECTORY, 1):
        if name is None:
            print(f"| {i} | {step} | — | — | — | — | {paper} |")
            continue
        d = os.path.join(root, name)
        lin, knn, pm = probe_cells(d)
        tm = minutes(d)
        print(f"| {i if 'ablation' not in name else '—'} | {step} | {lin} | {knn} | "
              f"{'' if tm is None else f'{tm:.1f}'} | {pm} | {paper} |")
    print()
    print("| baseline | linear % | k-NN % | probe min |")
    print("|---|---|---|---|")
    for name, what in BASELINES:
        lin, knn, pm = probe_cells(os.path.join(root, name))
        print(f"| {what} | {lin} | {knn} | {pm} |")
    print()
    print("| PCA d (patch 4, D = 16) | explained variance | linear % | k-NN % | train min |")
    print("|---|---|---|---|---|")
    for d in (2, 4, 8, 16):
        name = "traj_11_ldae" if d == 4 else f"sweep_d{d}"
        lin, knn, _ = probe_cells(os.path.join(root, name))
        tm = minutes(os.path.join(root, name))
        var = ""
        try:
            with open(os.path.join(root, f"pca_d{d}.txt")) as f:
                for line in f:
                    if line.startswith("cumulative at d"):
                        var = line.split(":")[1].strip()
        except OSError:
            pass
        print(f"| {d} | {var} | {lin} | {knn} | {'' if tm is None else f'{tm:.1f}'} |")


# (run name, what it is) of tools/experiments/ldae_long.sh
LONG_RUNS = [("long_dit_3000", "DiT baseline (row 1), 3000 steps, constant lr"),
             ("long_ldae_3000", "l-DAE (row 11), 3000 steps, constant lr"),
             ("long_dit_3000_s1", "DiT baseline, 3000 steps, seed 1"),
             ("long_ldae_3000_s1", "l-DAE, 3000 steps, seed 1"),
             ("mid_dit_cos6k", "DiT baseline, 6000 steps, cosine lr, flips"),
             ("mid_ldae_cos6k", "l-DAE, 6000 steps, cosine lr, flips"),
             ("mid_dit_cos6k_s1", "DiT baseline, 6000 steps, cosine lr, flips, seed 1"),
             ("mid_ldae_cos6k_s1", "l-DAE, 6000 steps, cosine lr, flips, seed 1"),
             ("mid_ldae_cos6k_crop35", "l-DAE, 6000 steps, cosine lr, flips, random resized crops (0.35-1)"),
             ("p4_ldae_cos3k", "l-DAE, 3000 steps, cosine lr, flips"),
             ("p2_ldae_cos3k", "l-DAE, patch 2, 3000 steps, cosine lr, flips"),
             ("long_ldae_cos18k", "l-DAE (row 11), 18000 steps, cosine lr, flips"),
             ("wide_dit_1000", "DiT baseline, hidden 384, 1000 steps, constant lr"),
             ("wide_ldae_1000", "l-DAE, hidden 384, 1000 steps, constant lr"),
             ("wide_ldae_cos10k", "l-DAE, hidden 384, 10000 steps, cosine lr, flips"),
             ("w_ldae_cos3k", "l-DAE, 3000 steps, cosine lr, flips, whitened tokenizer"),
             ("wd_ldae_cos3k", "l-DAE, 3000 steps, cosine lr, flips, weight decay 0.05")]
# depth 12 has twelve blocks: a table of its own
DEEP_RUNS = [("d12_ldae_cos3k", "l-DAE, depth 12 (encoder = blocks 0-5), 3000 steps, cosine lr, flips")]
# the probe's input noise levels tried on p4_ldae_cos3k (probe_all_t<T>.json; t = 10 is its probe_all.json)
PROBE_T_RUN, PROBE_TS = "p4_ldae_cos3k", (0, 10, 50, 150)
# (run name, its total steps, what it is): the runs of ldae_long.sh that keep milestones and get 60k-image probes
MILESTONE_RUNS = [("long_ldae_cos18k", 18000, "l-DAE, 18000 steps"),
                  ("wide_ldae_cos10k", 10000, "l-DAE, hidden 384, 10000 steps")]


def block_table(rows):
    """rows: (label, probe_all.json contents or None); one column per block, 'linear / k-NN' in each cell."""
    depth = max((len(p["blocks"]) for _, p in rows if p), default=0)
    print("| run | " + " | ".join(f"block {b}" for b in range(depth)) + " |")
    print("|---|" + "---|" * depth)
    for label, p in rows:
        if not p:
            print(f"| {label} | not run |" + " |" * (depth - 1))
            continue
        best = max(b["linear_top1"] for b in p["blocks"])
        cells = [(f"**{b['linear_top1']:.2f}**" if b["linear_top1"] == best else f"{b['linear_top1']:.2f}") +
                 f" / {b['knn_top1']:.2f}" for b in p["blocks"]]
        print(f"| {label} | " + " | ".join(cells) + " |")


def ldae_long(root):
    print("Linear / k-NN top-1 % per block (EMA weights, t = 10; blocks 0-2 = encoder), probe on "
          "20,000 train / 10,000 test images; bold = the run's best block.")
    print()
    block_table([(what, load(os.path.join(root, name, "probe_all.json"))) for name, what in LONG_RUNS])
    print()
    print("Depth 12 (blocks 0–5 = encoder), same recipe:")
    print()
    block_table([(what, load(os.path.join(root, name, "probe_all.json"))) for name, what in DEEP_RUNS])
    print()
    print(f"{dict(LONG_RUNS)[PROBE_T_RUN]}: the probe's input noise level t (of 1000):")
    print()
    block_table([(f"t = {t}", load(os.path.join(root, PROBE_T_RUN, "probe_all.json" if t == 10 else f"probe_all_t{t}.json")))
                 for t in PROBE_TS])
    print()
    for name, steps, what in MILESTONE_RUNS:
        run = os.path.join(root, name)
        names = os.listdir(run) if os.path.isdir(run) else []
        kept = sorted(int(m.group(1)) for m in (re.fullmatch(r"probe_all_(\d+)\.json", f) for f in names) if m)
        print(f"{what}: the checkpoints kept along the way (mid-schedule: the learning rate not yet annealed):")
        print()
        block_table([(f"step {s}", load(os.path.join(run, f"probe_all_{s}.json"))) for s in kept] +
                    [(f"step {steps} (end)", load(os.path.join(run, "probe_all.json")))])
        print()
    print("The same probes trained on all 60,000 training images (10,000 test):")
    print()
    block_table([(what, load(os.path.join(root, name, "probe_all_full.json"))) for name, _, what in MILESTONE_RUNS])
    print()
    pix = load(os.path.join(root, "base_pixels_full", "probe.json"))
    print(f"raw pixels, 60,000 training images: " +
          (f"{pix['linear_top1']:.2f} / {pix['knn_top1']:.2f}" if pix else "not run"))


# (run name, what it is) of tools/experiments/ldae_tuned.sh, in its order
TUNED_RUNS = [("traj_01_dit_baseline", "DiT baseline (row 1), 1000 steps"),
              ("traj_11_ldae", "l-DAE (row 11), 1000 steps")] + \
             [(n, w) for n, w in LONG_RUNS if not n.endswith("_3000_s1")]   # the constant-lr seed 1 pair: fixed probe only
TUNED_FULL_RUNS = [(n, w) for n, _, w in MILESTONE_RUNS]


def tuned_note(p):
    """The weight decays the search chose, per block: '0 / 1e-4 / ...'."""
    return " / ".join(f"{b['wd']:g}" for b in p["blocks"]) if p else ""


def ldae_tuned(root):
    print("Tuned linear probe (100 epochs, lr 0.3, weight decay chosen among 0, 1e-5, 1e-4, 1e-3, 1e-2 on the last "
          "10% of the probe's training images, then retrained on all of them): linear / k-NN top-1 % per block, "
          "20,000 train / 10,000 test images; bold = the run's best block.")
    print()
    rows = [(w, load(os.path.join(root, n, "probe_tuned.json"))) for n, w in TUNED_RUNS]
    block_table(rows)
    print()
    deep = [(w, load(os.path.join(root, n, "probe_tuned.json"))) for n, w in DEEP_RUNS]
    print("Depth 12, tuned probe:")
    print()
    block_table(deep)
    print()
    print("Chosen weight decay per block: " +
          "; ".join(f"{w}: {tuned_note(p)}" for w, p in rows + deep if p))
    print()
    print("| baseline | fixed probe (30 epochs, lr 0.1, wd 0) | tuned probe | chosen wd |")
    print("|---|---|---|---|")
    for name, what in [("base_pixels", "raw pixels, 20,000 train"), ("base_pca_d4", "PCA coefficients (d = 4), 20,000 train"),
                       ("base_pixels_full", "raw pixels, 60,000 train")]:
        fixed, tuned = load(os.path.join(root, name, "probe.json")), load(os.path.join(root, name, "probe_tuned.json"))
        cell = lambda p: f"{p['linear_top1']:.2f} / {p['knn_top1']:.2f}" if p else "not run"
        print(f"| {what} | {cell(fixed)} | {cell(tuned)} | {tuned['wd']:g} |" if tuned else
              f"| {what} | {cell(fixed)} | not run | |")
    print()
    print("The tuned probe trained on all 60,000 training images (10,000 test):")
    print()
    block_table([(w, load(os.path.join(root, n, "probe_tuned_full.json"))) for n, w in TUNED_FULL_RUNS])


def mean_std(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "not run"
    m = sum(xs) / len(xs)
    if len(xs) == 1:
        return f"{m:.3f} (1 run)"
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    return f"{m:.3f} ± {s:.3f}"


def read_log(log):
    """The lines of a JSONL log, or None if it is missing or unreadable."""
    try:
        return [json.loads(line) for line in open(log)]
    except (OSError, ValueError):
        return None


def last_mean(log, field, k=5):
    rows = read_log(log)
    if rows is None:
        return None
    vals = [r[field] for r in rows if field in r][-k:]
    return sum(vals) / len(vals) if vals else None


VARIANTS = [("none", "baseline (no Dispersive Loss)", "36.49"), ("infonce_l2", "InfoNCE-L2 (paper default)", "32.35"),
            ("infonce_cos", "InfoNCE-cosine", "34.33"), ("hinge", "Hinge", "33.93"),
            ("covariance", "Covariance", "35.82")]


def dispersive(root):
    seeds = sorted({e.rsplit("-s", 1)[1] for e in os.listdir(root) if "-s" in e and os.path.isdir(os.path.join(root, e))})
    print(f"Mean ± standard deviation over seeds {', '.join(seeds)} (sample standard deviation).")
    print()
    print("| variant | runs | FD-CNN ↓ | KID ↓ | precision | recall | probe linear % (block 0) | probe k-NN % | "
          "diffusion loss (last 250 steps) | train min | SiT-B/2 FID (paper) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    real = []
    for v, what, paper in VARIANTS:
        fd, kid, prec, rec, lin, knn, loss, tmin, n = [], [], [], [], [], [], [], [], 0
        for s in seeds:
            d = os.path.join(root, f"{v}-s{s}")
            e, p = load(os.path.join(d, "eval.json")), load(os.path.join(d, "probe.json"))
            if not (e and p):
                continue
            n += 1
            fd.append(e["samples"]["fd"]); kid.append(e["samples"]["kid"])
            prec.append(e["samples"]["precision"]); rec.append(e["samples"]["recall"])
            real.append(e["real_test"]["fd"])
            lin.append(p["linear_top1"]); knn.append(p["knn_top1"])
            loss.append(last_mean(os.path.join(d, "log.jsonl"), "loss_diff"))
            tmin.append(minutes(d))
        print(f"| {what} | {n} | {mean_std(fd)} | {mean_std(kid)} | {mean_std(prec)} | {mean_std(rec)} | "
              f"{mean_std(lin)} | {mean_std(knn)} | {mean_std(loss)} | {mean_std(tmin)} | {paper} |")
    print()
    print(f"Real test images against the same reference (the floor at this sample count): FD-CNN {mean_std(real)}.")
    print()
    print("Per run:")
    print()
    print("| run | FD-CNN | KID | precision | recall | probe linear % | probe k-NN % |")
    print("|---|---|---|---|---|---|---|")
    for v, _, _ in VARIANTS:
        for s in seeds:
            d = os.path.join(root, f"{v}-s{s}")
            e, p = load(os.path.join(d, "eval.json")), load(os.path.join(d, "probe.json"))
            if e and p:
                print(f"| {v}-s{s} | {e['samples']['fd']:.3f} | {e['samples']['kid']:.4f} | "
                      f"{e['samples']['precision']:.3f} | {e['samples']['recall']:.3f} | {p['linear_top1']:.2f} | "
                      f"{p['knn_top1']:.2f} |")


EPOCH = 1875   # steps per epoch of Fashion-MNIST at batch 32 (tools/experiments/dispersive_long.sh)
LONG_ARMS = [("none", "baseline"), ("paper", "InfoNCE-L2, paper recipe (λ 0.5, τ 0.5, block depth/4)"),
             ("release", "InfoNCE-L2, release recipe (λ 0.25, τ 1, last block)"), ("hinge", "Hinge"),
             ("infonce_cos", "InfoNCE-cosine"), ("covariance", "Covariance"), ("ddpm_none", "DDPM objective, baseline"),
             ("ddpm_paper", "DDPM objective, paper recipe")]


def log_at(rows, step, field):
    """The value of field logged at step in a log's rows (the last line at or before it that has the field)."""
    vals = [r[field] for r in rows if field in r and r.get("step", 0) <= step]
    return vals[-1] if vals else None


def dispersive_long(root):
    runs = sorted(e for e in os.listdir(root) if os.path.isdir(os.path.join(root, e)))
    evals = {}
    for r in runs:
        for f in sorted(os.listdir(os.path.join(root, r))):
            m = re.fullmatch(r"eval_e(\d+)\.json", f)
            e = load(os.path.join(root, r, f)) if m else None
            if e:
                evals.setdefault(r, {})[int(m.group(1))] = e
        if r in evals:   # the FD-vs-epoch curve, for `ddm plot --x epoch --y fd`
            with open(os.path.join(root, r, "fd_curve.jsonl"), "w") as f:
                for ep, e in sorted(evals[r].items()):
                    f.write(json.dumps({"epoch": ep, "fd": e["samples"]["fd"], "n": e["n"]}) + "\n")
    epochs = sorted({ep for r in evals for ep in evals[r]})
    print("Sample quality of the EMA weights (FD-CNN ↓; the sample count in brackets; mean ± sd over the seeds run):")
    print()
    print("| arm | seeds | " + " | ".join(f"FD-CNN epoch {ep}" for ep in epochs) +
          " | KID (last) | precision (last) | recall (last) |")
    print("|---|---|" + "---|" * (len(epochs) + 3))
    arms = [(a, what) for a, what in LONG_ARMS] + sorted({(r.rsplit("-s", 1)[0], r.rsplit("-s", 1)[0]) for r in runs
                                                          if r.rsplit("-s", 1)[0] not in dict(LONG_ARMS)})
    floors = {}
    for a, what in arms:
        members = [r for r in runs if r.rsplit("-s", 1)[0] == a and r in evals]
        if not members:
            continue
        cells = []
        for ep in epochs:
            xs = [evals[r][ep]["samples"]["fd"] for r in members if ep in evals[r]]
            ns = {evals[r][ep]["n"] for r in members if ep in evals[r]}
            for r in members:
                if ep in evals[r]:
                    floors.setdefault((ep, evals[r][ep]["n"]), []).append(evals[r][ep]["real_test"]["fd"])
            cells.append(f"{mean_std(xs)} ({'/'.join(str(n) for n in sorted(ns))})" if xs else "—")
        last = [evals[r][max(evals[r])]["samples"] for r in members]
        print(f"| {what} | {', '.join(r.rsplit('-s', 1)[1] for r in members)} | " + " | ".join(cells) +
              f" | {mean_std([x['kid'] for x in last])} | {mean_std([x['precision'] for x in last])} | "
              f"{mean_std([x['recall'] for x in last])} |")
    print()
    print("Real test images against the same reference (the floor at each count): " +
          "; ".join(f"epoch {ep}, {n} images: {mean_std(v)}" for (ep, n), v in sorted(floors.items())) + ".")
    print()
    print("The mechanism, from log.jsonl at the end of epochs 1, 3 and 10 (b0 = block 0, the paper's depth/4; "
          "b5 = the last block): feature rms, share of off-diagonal pairs with exp(-d/τ) > 1e-3, "
          "‖Dispersive gradient‖ / ‖diffusion gradient‖ at the block, effective rank on a fixed batch of 256:")
    print()
    fields = ["feat_rms", "pair_share", "grad_ratio", "erank"]
    print("| run | epoch | " + " | ".join(f"{f} b0 | {f} b5" for f in fields) + " |")
    print("|---|---|" + "---|" * (2 * len(fields)))
    for r in runs:
        rows = read_log(os.path.join(root, r, "log.jsonl")) or []
        logged = {row.get("step") for row in rows}
        for ep in (1, 3, 10, 30):
            step = ep * EPOCH
            if step not in logged:   # the run has not reached the end of that epoch
                continue
            vals = [log_at(rows, step, f"{f}_b{b}") for f in fields for b in (0, 5)]
            if all(v is None for v in vals):
                continue
            print(f"| {r} | {ep} | " + " | ".join("—" if v is None else f"{v:.4g}" for v in vals) + " |")
    print()
    print("Linear probe / k-NN top-1 % of every block (final EMA weights, t = 0.99, 10,000 train / 5,000 test images):")
    print()
    probes = {r: load(os.path.join(root, r, "probe_all.json")) for r in runs}
    probes = {r: p for r, p in probes.items() if p and "blocks" in p}
    nb = max((len(p["blocks"]) for p in probes.values()), default=0)
    print("| run | " + " | ".join(f"block {b}" for b in range(nb)) + " |")
    print("|---|" + "---|" * nb)
    for r, p in probes.items():
        print(f"| {r} | " + " | ".join(f"{b['linear_top1']:.2f} / {b['knn_top1']:.2f}" for b in p["blocks"]) + " |")


if __name__ == "__main__":
    commands = {"ldae": ldae, "ldae_long": ldae_long, "ldae_tuned": ldae_tuned, "dispersive": dispersive,
                "dispersive_long": dispersive_long}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2])
