// Subcommands of the ddm tool, one file each.
#pragma once
int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_pca(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_classifier(int argc, char **argv);
int cmd_plot(int argc, char **argv);
// Applies --threads (0 = all cores) to OpenMP and OpenBLAS.
void cli_set_threads(int n);
