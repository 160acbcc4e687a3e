#include "cli/cli_data.h"
#include <stdio.h>
#include "common.h"

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
