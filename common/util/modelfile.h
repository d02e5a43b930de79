/* modelfile.h — opening the files of a model folder. A model folder comes from a download or a
 * colleague: its files are read only when they are regular files of a sane size (a FIFO would block
 * the daemon for ever, a device would never end, a directory is a mistake), and every file name that
 * a file of the folder names (the shards of model.safetensors.index.json) must be a plain name inside
 * the folder. Symbolic links are followed: Hugging Face's cache folders are made of them (snapshot
 * files link to ../../blobs/...), so what is checked is the name given and the thing finally opened. */
#ifndef PD_MODELFILE_H
#define PD_MODELFILE_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "common/util/error.h"

#define MF_MAX_JSON (256u << 20) /* config, tokenizer, index files: real ones are < 40 MiB */
#define MF_MAX_TEXT (16u << 20)  /* chat_template.jinja */

/* `dir` exists and is a directory (or a link to one); the loaders say which file is missing. `flag`
 * names where the path came from in the message ("--model"). */
int mf_check_dir(const char *dir, const char *flag, struct error *err);

/* fopen(path, "rb") for a regular file of at most max bytes. Otherwise NULL with errno set (ENOENT
 * when there is nothing at path) and *why saying what is wrong ("a FIFO, not a regular file"). */
FILE *mf_fopen(const char *path, size_t max, const char **why);

/* json_load_file for a regular file of at most MF_MAX_JSON bytes. When the file is absent or not
 * acceptable, NULL with the reason in je->text (line 0), errno ENOENT when absent. */
json_t *mf_load_json(const char *path, size_t flags, json_error_t *je);

/* A file name a model file names: not empty, no '/' or '\\', no control bytes, not "." or "..", at
 * most 255 bytes, ending in `suffix` (e.g. ".safetensors"). */
bool mf_name_ok(const char *name, const char *suffix);

/* "a directory", "a FIFO", ... for a stat mode, in messages. */
const char *mf_kind(unsigned mode);

#endif
