/* daecl — the files of a run folder that training writes besides its
 * checkpoint: the folder itself (new, marked and locked), config.yaml,
 * metrics.jsonl (appended line by line; a resume first drops what an
 * interrupted run wrote after its last checkpoint) and JSON documents such as
 * summary.json. core/train.c decides what goes into them. */
#ifndef DAECL_CORE_RUNFILES_H
#define DAECL_CORE_RUNFILES_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/config.h"
#include "core/runfolder.h"
#include "daecl/error.h"

/* Before anything is opened or written: may a new run go where it would?
 * out_dir is --out (NULL: <output.dir>/<name>). Writes nothing. */
int daecl_runfiles_check_out(const char *out_dir, const daecl_config *c, daecl_err *err);

/* Makes the run folder: out_dir as given (checked by daecl_runfiles_check_out),
 * else <output.dir>/<name>, -2, -3, ... (never a folder that exists), marked
 * as daecl's and locked (*lock). Its path goes to run_dir (n bytes). */
int daecl_runfiles_make_dir(const char *out_dir, const daecl_config *c, char *run_dir, size_t n,
                            daecl_lock **lock, daecl_err *err);

/* run_dir/config.yaml: the resolved config, which `daecl train` accepts as is. */
int daecl_runfiles_write_config(const char *run_dir, const daecl_config *c, daecl_err *err);

/* run_dir/NAME: the document o, printed and written atomically; o is freed.
 * `what` names the file in an error sentence ("summary"). */
int daecl_runfiles_write_json(const char *run_dir, const char *name, cJSON *o, const char *what,
                              daecl_err *err);

/* metrics.jsonl, open for appending. */
typedef struct daecl_metrics daecl_metrics;

/* Opens run_dir/metrics.jsonl: new, or for a resumed run the lines with
 * step <= ckpt_step kept (the file then reads as if the run had never
 * stopped) and appended to. */
int daecl_metrics_open(const char *run_dir, int resumed, uint64_t ckpt_step, daecl_metrics **out,
                       daecl_err *err);
void daecl_metrics_close(daecl_metrics *m); /* accepts NULL */
/* A new line's object: {"type": type, "epoch": epoch, "step": step}; NULL
 * when out of memory (daecl_metrics_line then says so). */
cJSON *daecl_metrics_obj(const char *type, uint32_t epoch, uint64_t step);
/* Appends obj as one line, flushed, and frees it. A NULL m (a rank other
 * than 0, which writes no files) only frees it. */
int daecl_metrics_line(daecl_metrics *m, cJSON *obj, daecl_err *err);

#endif
