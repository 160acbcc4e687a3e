// `ddm train --config FILE`: the config-file reader (src/config/args.c) with train's field table, then the
// rules between fields (train_config_check), as cmd_train runs them.
#include "fuzz.h"
#include "config/config.h"

#define MAX_SPECS 160

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("in.conf", data, size);
    FUZZ_TRY {
        static TrainConfig c;
        static ArgSpec specs[MAX_SPECS];
        train_config_defaults(&c);
        int n = train_config_specs(&c, specs, MAX_SPECS);
        ArgParser p = {"train", "fuzz", specs, n};
        char *argv[] = {"train", "--config", (char *)path, NULL};
        args_parse(&p, 3, argv);
        train_config_check(&c, "");
    }
    return 0;
}
