// Typed settings from text, shared by every subcommand's flags, config files and (through the run configuration's
// field table, config/config.h) checkpoint metadata: one validation path (types, ranges, choices) for all.
// Accepts "--name value" and "--name=value"; booleans take no value ("--flip"),
// "=0/1" or a following 0/1/true/false/yes/no.
// "--config FILE" reads "name = value" lines (# comments) through the same table, flags given
// later on the command line win. Unknown flags and out-of-range values are one-line errors.
#pragma once
#include <stddef.h>

typedef enum { ARG_INT, ARG_FLOAT, ARG_STR, ARG_BOOL, ARG_U64 } ArgType;

typedef struct {
    const char *name;      // without the leading dashes
    ArgType type;
    void *dst;             // int*, float*, char[size], int*, uint64_t*
    size_t size;           // ARG_STR buffer size
    double min, max;       // inclusive range for numbers
    const char *help;
    int seen;              // set by args_parse when given
    const char *choices;   // ARG_STR: "a|b|c" (an empty item allows ""), or NULL for free text
} ArgSpec;

typedef struct {
    const char *command;   // e.g. "train"
    const char *summary;   // one line
    ArgSpec *specs;
    int n;
} ArgParser;

// Parses argv[1..argc-1]; prints help and exits 0 on --help; fatal on errors.
void args_parse(ArgParser *p, int argc, char **argv);
int args_seen(const ArgParser *p, const char *name);
// Sets one setting from its text as a flag would (type, range, choices; fatal one line prefixed by `where`, e.g.
// "FILE:LINE: " or "" for the command line).
void args_set(ArgSpec *s, const char *value, const char *where);
void args_print_help(const ArgParser *p);
