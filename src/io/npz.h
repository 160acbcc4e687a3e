// NumPy .npz archives: ZIP files whose members are .npy files, stored (np.savez) or deflate-compressed
// (np.savez_compressed). A small ZIP reader: the end-of-central-directory record (and its ZIP64
// form), the central directory (with ZIP64 extra fields, which numpy needs for members or offsets of
// 4 GiB and more), then one member, inflated with zlib and checked against its CRC-32.
#pragma once
#include "io/npy.h"

// Reads one member of the .npz at path and parses it like npy_load_f32 (the same dtypes and shapes).
// member: the array's name with or without ".npy" ("arr_0", "images.npy"); NULL or "" picks "arr_0"
// if present, else the first member. One-line fatal errors on: no end-of-central-directory record
// (not a ZIP archive, or truncated), bad signatures, multi-disk or encrypted archives, compression
// other than stored/deflate, members that run past the central directory, corrupt deflate data,
// a size or CRC-32 that does not match the directory, and a missing member (the message lists them).
// chosen (if not NULL) receives the member's name as "path:name.npy", the name its error messages use.
NpyArray npz_load_f32(const char *path, const char *member, char *chosen, size_t chosen_cap);
// The archive's member names without ".npy", in directory order; NULL-terminated, each and the array
// malloc'd. Fatal on the archive errors npz_load_f32 reports for the directory.
char **npz_member_names(const char *path, int *count);
