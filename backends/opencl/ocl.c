/* daecl opencl backend — the plugin: its descriptor and parameter schema,
 * opening and closing a device (one context, one in-order queue), device
 * buffers (alloc, free, write, read, fill, copy) and finish. The other
 * ocl_*.c files hold the ops, device choice, programs and the checker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl.h"

enum { ELEM = sizeof(float) };

/* The host table from init(), for calls that come without one. */
static const daecl_host *init_host;

static int ocl_init(const daecl_host *host, daecl_err *err)
{
    (void)err;
    init_host = host;
    return 0;
}

/* ---- lifecycle ----------------------------------------------------------------- */

/* Copies an info into a caller's element of out_size bytes. */
static void give_info(const daecl_device_info *info, void *out, size_t out_size)
{
    memset(out, 0, out_size);
    memcpy(out, info, out_size < sizeof *info ? out_size : sizeof *info);
}

static int ocl_list_devices(const daecl_host *host, daecl_device_info *out, size_t info_size,
                            size_t max, size_t *n, daecl_err *err)
{
    const daecl_host *h = host ? host : init_host;
    enum { MAX = 64 };
    daecl__ocl_device *devs = calloc(MAX, sizeof *devs);
    if (!devs)
        return daecl__ocl_fail(h, err, DAECL_ENOMEM,
                               "opencl backend: out of memory listing the OpenCL devices");
    size_t count = 0;
    int rc = daecl__ocl_list(h, devs, MAX, &count, err);
    if (rc == 0) {
        size_t k = count < max ? count : max;
        for (size_t i = 0; out && i < k; i++)
            give_info(&devs[i].info, (char *)out + i * info_size, info_size);
        if (n)
            *n = out ? k : count;
    }
    free(devs);
    return rc;
}

static void ocl_close(void *ctx)
{
    daecl__ocl *o = ctx;
    if (!o)
        return;
    if (o->queue)
        clFinish(o->queue); /* nothing may still run on what is released below */
    daecl__ocl_program_wait_saved(); /* the cache written, and o no longer in a job */
    daecl__ocl_fault_report(o);
    daecl__ocl_gemm_release(o);
    daecl__ocl_ops_release(o);
    if (o->queue)
        clReleaseCommandQueue(o->queue);
    if (o->context)
        clReleaseContext(o->context);
    free(o);
}

static int device_limits(daecl__ocl *o, daecl_err *err)
{
    int rc;
    /* At least 3 dimensions; room for devices that report more. */
    size_t items[16] = {0};
    if ((rc = DAECL__OCL_CHECK(o,
                               clGetDeviceInfo(o->device, CL_DEVICE_MAX_WORK_GROUP_SIZE,
                                               sizeof o->max_wg, &o->max_wg, NULL),
                               "clGetDeviceInfo", "CL_DEVICE_MAX_WORK_GROUP_SIZE", err)) ||
        (rc = DAECL__OCL_CHECK(
             o,
             clGetDeviceInfo(o->device, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof items, items, NULL),
             "clGetDeviceInfo", "CL_DEVICE_MAX_WORK_ITEM_SIZES", err)) ||
        (rc = DAECL__OCL_CHECK(o,
                               clGetDeviceInfo(o->device, CL_DEVICE_LOCAL_MEM_SIZE,
                                               sizeof o->local_mem, &o->local_mem, NULL),
                               "clGetDeviceInfo", "CL_DEVICE_LOCAL_MEM_SIZE", err)))
        return rc;
    memcpy(o->max_item, items, sizeof o->max_item);
    /* Hashed into program keys: a binary is only loaded where it was built. */
    daecl__ocl_info_str(NULL, o->device, CL_DEVICE_VERSION, o->device_version,
                        sizeof o->device_version);
    daecl__ocl_info_str(o->platform, NULL, CL_PLATFORM_VERSION, o->platform_version,
                        sizeof o->platform_version);
    return 0;
}

static int ocl_open(const daecl_host *host, const daecl_param_value *values, void **ctx,
                    daecl_err *err)
{
    const daecl_host *h = host ? host : init_host;
    *ctx = NULL;
    daecl__ocl_choice choice;
    daecl__ocl_device dev;
    int rc;
    if ((rc = daecl__ocl_choice_parse(h, values, &choice, err)) ||
        (rc = daecl__ocl_choose(h, &choice, &dev, err)))
        return rc;
    daecl__ocl *o = calloc(1, sizeof *o);
    if (!o)
        return daecl__ocl_fail(h, err, DAECL_ENOMEM, "opencl backend: out of memory opening %s",
                               dev.info.name);
    o->host = h;
    o->platform = dev.platform;
    o->device = dev.device;
    o->info = dev.info;
    o->choice = choice;
    if ((rc = daecl__ocl_fault_init(o, err)))
        goto fail;
    /* auto: CLBlast, unless binaries are asked for (CLBlast compiles); on a
     * CPU device, daecl's CPU kernels at every shape a tuning does not list
     * (R1 on POCL: 16,076 examples/s against 2,798 with CLBlast's built-in
     * parameters). CLBlast mode still, so that `daecl tune` runs and its
     * entries win. */
    o->gemm_mode = choice.gemm == DAECL__GEMM_ASK_DAECL_CPU ? DAECL__GEMM_DAECL_CPU
                   : choice.gemm == DAECL__GEMM_ASK_DAECL ||
                           (choice.gemm == DAECL__GEMM_AUTO && choice.binaries[0] != '\0')
                       ? DAECL__GEMM_DAECL
                       : DAECL__GEMM_CLBLAST;
    o->cpu_auto = choice.gemm == DAECL__GEMM_AUTO && o->gemm_mode == DAECL__GEMM_CLBLAST &&
                  strcmp(o->info.type, "cpu") == 0;
    if ((rc = device_limits(o, err)))
        goto fail;
    cl_int cr;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)o->platform, 0};
    o->context = clCreateContext(props, 1, &o->device, NULL, NULL, &cr);
    if ((rc = DAECL__OCL_CHECK(o, cr, "clCreateContext", NULL, err))) {
        o->context = NULL;
        goto fail;
    }
    /* In order (no CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE): each op sees
     * the results of the ones enqueued before it. */
    o->queue = clCreateCommandQueue(o->context, o->device, 0, &cr);
    if ((rc = DAECL__OCL_CHECK(o, cr, "clCreateCommandQueue", NULL, err))) {
        o->queue = NULL;
        goto fail;
    }
    if ((rc = daecl__ocl_ops_init(o, err)))
        goto fail;
    if (o->gemm_mode == DAECL__GEMM_DAECL && (rc = daecl__ocl_gemm_init(o, err)))
        goto fail;
    if (o->gemm_mode == DAECL__GEMM_DAECL_CPU || o->cpu_auto) {
        daecl__ocl_cpuvar v; /* gemm_cpu parses: daecl__ocl_choice_parse checked it */
        if (!choice.gemm_cpu[0] || daecl__ocl_cpuvar_parse(choice.gemm_cpu, &v) != 0)
            daecl__ocl_cpuvar_default(o, &v);
        if ((rc = daecl__ocl_gemm_cpu_get(o, &v, &o->cpu_gemm_fixed, err)))
            goto fail;
    }
    daecl__ocl_tune_open(o); /* `daecl tune`'s file for this device, if any */
    if (h && h->log) {
        char how[160] = "CLBlast";
        if (o->gemm_mode == DAECL__GEMM_DAECL)
            snprintf(how, sizeof how, "daecl's kernel");
        if (o->gemm_mode == DAECL__GEMM_DAECL_CPU || o->cpu_auto) {
            char var[64];
            daecl__ocl_cpuvar_describe(&o->cpu_gemm[o->cpu_gemm_fixed].var, var, sizeof var);
            snprintf(how, sizeof how, "daecl's CPU kernel %s%s", var,
                     o->cpu_auto ? " (auto on a CPU device; tuned shapes go their way)" : "");
        }
        h->log(DAECL_LOG_DEBUG, "opencl", "opened %s (%s, driver %s); GEMM by %s", o->info.name,
               o->info.platform, o->info.driver, how);
    }
    daecl__ocl_log_counts(o);
    *ctx = o;
    return 0;
fail:
    ocl_close(o);
    return rc;
}

static void ocl_describe(void *ctx, daecl_device_info *out, size_t out_size)
{
    give_info(&((daecl__ocl *)ctx)->info, out, out_size);
}

/* ---- memory ----------------------------------------------------------------------- */

static int alloc_failed(const daecl__ocl *o, size_t n_bytes, const char *what, const char *why,
                        daecl_err *err)
{
    return daecl__ocl_fail(o->host, err, DAECL_ENOMEM,
                           "cannot allocate %zu bytes (%.1f MiB) for %s on %s: %s; lower "
                           "train.batch_size, use a smaller model, or set data.resident_max_mb to "
                           "stream the data",
                           n_bytes, (double)n_bytes / (1024.0 * 1024.0), what ? what : "a buffer",
                           o->info.name, why);
}

static int ocl_alloc(void *ctx, size_t n_bytes, const char *what, daecl_buf **out, daecl_err *err)
{
    daecl__ocl *o = ctx;
    *out = NULL;
    if (o->info.max_alloc_bytes > 0 && n_bytes > o->info.max_alloc_bytes) {
        char why[128];
        snprintf(why, sizeof why, "larger than its largest allocation of %.1f MiB",
                 (double)o->info.max_alloc_bytes / (1024.0 * 1024.0));
        return alloc_failed(o, n_bytes, what, why, err);
    }
    /* OpenCL refuses empty buffers, and the fill wants whole elements. */
    size_t cap = n_bytes == 0 ? ELEM : (n_bytes + ELEM - 1) / ELEM * ELEM;
    daecl_buf *b = calloc(1, sizeof *b);
    if (!b)
        return alloc_failed(o, n_bytes, what, "out of host memory", err);
    cl_int cr;
    char why[128];
    b->mem = DAECL__OCL_FAULTY_CREATE(
        o, DAECL__FAULT_ALLOC, &cr, clCreateBuffer(o->context, CL_MEM_READ_WRITE, cap, NULL, &cr));
    if (cr != CL_SUCCESS) {
        free(b);
        snprintf(why, sizeof why, "clCreateBuffer failed with %s", daecl__ocl_code_name(cr));
        return alloc_failed(o, n_bytes, what, why, err);
    }
    b->n_bytes = n_bytes;
    /* OpenCL allocates lazily, at first use: the zero fill is that use, and
     * waiting for it here (start-up only) makes out-of-memory name the
     * buffer instead of surfacing at some later kernel. */
    const cl_float zero = 0.0f;
    const char *call = "clEnqueueFillBuffer";
    cr = DAECL__OCL_FAULTY(
        o, DAECL__FAULT_ENQUEUE,
        clEnqueueFillBuffer(o->queue, b->mem, &zero, sizeof zero, 0, cap, 0, NULL, NULL));
    if (cr == CL_SUCCESS) {
        call = "clFinish";
        cr = clFinish(o->queue);
    }
    if (cr != CL_SUCCESS) {
        clReleaseMemObject(b->mem);
        free(b);
        snprintf(why, sizeof why, "%s failed with %s", call, daecl__ocl_code_name(cr));
        return alloc_failed(o, n_bytes, what, why, err);
    }
    *out = b;
    return 0;
}

static void ocl_free(void *ctx, daecl_buf *buf)
{
    (void)ctx;
    if (!buf)
        return;
    clReleaseMemObject(buf->mem); /* deleted once queued commands using it are done */
    free(buf);
}

/* Byte range [off_bytes, off_bytes + n_bytes) of buf, for read and write. */
static int byte_range(const daecl__ocl *o, const daecl_buf *buf, size_t off_bytes, size_t n_bytes,
                      const void *host_p, const char *op, daecl_err *err)
{
    if (!buf)
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: %s was given no buffer; " DAECL__OCL_BUG, op);
    if (off_bytes > buf->n_bytes || n_bytes > buf->n_bytes - off_bytes)
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: %s of %zu bytes at byte %zu runs past the end of "
                               "a buffer of %zu bytes; " DAECL__OCL_BUG,
                               op, n_bytes, off_bytes, buf->n_bytes);
    if (n_bytes > 0 && !host_p)
        return daecl__ocl_fail(
            o->host, err, DAECL_EINVAL,
            "opencl backend: %s of %zu bytes was given no host memory; " DAECL__OCL_BUG, op,
            n_bytes);
    return 0;
}

static int ocl_write(void *ctx, daecl_buf *dst, size_t off_bytes, const void *src, size_t n_bytes,
                     daecl_err *err)
{
    daecl__ocl *o = ctx;
    int rc = byte_range(o, dst, off_bytes, n_bytes, src, "write", err);
    if (rc || n_bytes == 0)
        return rc;
    return DAECL__OCL_CHECK(
        o,
        DAECL__OCL_FAULTY(o, DAECL__FAULT_ENQUEUE,
                          clEnqueueWriteBuffer(o->queue, dst->mem, CL_TRUE, off_bytes, n_bytes,
                                               src, 0, NULL, NULL)),
        "clEnqueueWriteBuffer", NULL, err);
}

/* Called when the queue is empty (a blocking read, a finish): once an
 * optimiser update has run, every kernel of a training step has been
 * launched, and so compiled, and the programs compiled so far may be
 * written to the cache without holding up a kernel's first launch
 * (ocl_program.c). Without a training step, close writes them. */
static void ran_a_step(daecl__ocl *o)
{
    if (o->updated && !o->saving) {
        o->saving = 1;
        daecl__ocl_program_save_start();
    }
}

static int ocl_read(void *ctx, daecl_buf *src, size_t off_bytes, void *dst, size_t n_bytes,
                    daecl_err *err)
{
    daecl__ocl *o = ctx;
    int rc = byte_range(o, src, off_bytes, n_bytes, dst, "read", err);
    if (rc || n_bytes == 0)
        return rc;
    /* Blocking, on the in-order queue: waits for every op before it. */
    rc = DAECL__OCL_CHECK(
        o,
        DAECL__OCL_FAULTY(o, DAECL__FAULT_ENQUEUE,
                          clEnqueueReadBuffer(o->queue, src->mem, CL_TRUE, off_bytes, n_bytes, dst,
                                              0, NULL, NULL)),
        "clEnqueueReadBuffer", NULL, err);
    ran_a_step(o);
    return rc;
}

static int ocl_fill(void *ctx, daecl_slice dst, size_t n, float value, daecl_err *err)
{
    daecl__ocl *o = ctx;
    int rc = daecl__ocl_span(o, dst, n, "fill", "destination", err);
    if (rc || n == 0)
        return rc;
    const cl_float v = value;
    size_t off_bytes = dst.off * ELEM, n_bytes = n * ELEM;
    return DAECL__OCL_CHECK(o,
                            DAECL__OCL_FAULTY(o, DAECL__FAULT_ENQUEUE,
                                              clEnqueueFillBuffer(o->queue, dst.buf->mem, &v,
                                                                  sizeof v, off_bytes, n_bytes, 0,
                                                                  NULL, NULL)),
                            "clEnqueueFillBuffer", NULL, err);
}

static int ocl_copy(void *ctx, daecl_slice dst, daecl_slice src, size_t n, daecl_err *err)
{
    daecl__ocl *o = ctx;
    int rc;
    if ((rc = daecl__ocl_span(o, dst, n, "copy", "destination", err)) ||
        (rc = daecl__ocl_span(o, src, n, "copy", "source", err)))
        return rc;
    if (n > 0 && dst.buf == src.buf && dst.off < src.off + n && src.off < dst.off + n)
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: copy of %zu elements from element %zu to element "
                               "%zu of the same buffer overlaps itself; " DAECL__OCL_BUG,
                               n, src.off, dst.off);
    if (n == 0)
        return 0;
    size_t src_off_bytes = src.off * ELEM, dst_off_bytes = dst.off * ELEM, n_bytes = n * ELEM;
    return DAECL__OCL_CHECK(o,
                            DAECL__OCL_FAULTY(o, DAECL__FAULT_ENQUEUE,
                                              clEnqueueCopyBuffer(o->queue, src.buf->mem,
                                                                  dst.buf->mem, src_off_bytes,
                                                                  dst_off_bytes, n_bytes, 0, NULL,
                                                                  NULL)),
                            "clEnqueueCopyBuffer", NULL, err);
}

static int ocl_finish(void *ctx, daecl_err *err)
{
    daecl__ocl *o = ctx;
    int rc = DAECL__OCL_CHECK(o, clFinish(o->queue), "clFinish", NULL, err);
    ran_a_step(o);
    return rc;
}

/* ---- descriptor ------------------------------------------------------------------- */

/* tune_gemm at the caller's element size: the search works on this
 * build's daecl_gemm_shape, so a caller with another size gets a copy. */
static int ocl_tune_gemm(void *ctx, daecl_gemm_shape *shapes, size_t shape_size, size_t n,
                         double budget_s, daecl_err *err)
{
    if (shape_size == sizeof *shapes)
        return daecl__ocl_tune_gemm(ctx, shapes, n, budget_s, err);
    daecl__ocl *o = ctx;
    daecl_gemm_shape *own = calloc(n ? n : 1, sizeof *own);
    if (!own)
        return daecl__ocl_fail(o->host, err, DAECL_ENOMEM, "GEMM tuning: out of memory");
    size_t keep = shape_size < sizeof *own ? shape_size : sizeof *own;
    for (size_t i = 0; i < n; i++)
        memcpy(&own[i], (char *)shapes + i * shape_size, keep);
    int rc = daecl__ocl_tune_gemm(ctx, own, n, budget_s, err);
    for (size_t i = 0; !rc && i < n; i++)
        memcpy((char *)shapes + i * shape_size, &own[i], keep);
    free(own);
    return rc;
}

static const daecl_ext_devices ext_devices = {
    .size = sizeof(daecl_ext_devices),
    .list_devices = ocl_list_devices,
};
static const daecl_ext_precompile ext_precompile = {
    .size = sizeof(daecl_ext_precompile),
    .precompile = daecl__ocl_precompile,
};
static const daecl_ext_tune_gemm ext_tune_gemm = {
    .size = sizeof(daecl_ext_tune_gemm),
    .tune_gemm = ocl_tune_gemm,
};

static const void *ocl_get_extension(const char *name)
{
    if (!name)
        return NULL;
    if (strcmp(name, DAECL_EXT_DEVICES) == 0)
        return &ext_devices;
    if (strcmp(name, DAECL_EXT_PRECOMPILE) == 0)
        return &ext_precompile;
    if (strcmp(name, DAECL_EXT_TUNE_GEMM) == 0)
        return &ext_tune_gemm;
    return NULL;
}

/* daecl__ocl_optim_update, noting for ran_a_step that a step has run. */
static int ocl_optim_update(void *ctx, const daecl_optim_step *step, daecl_slice w,
                            daecl_slice g, daecl_slice s1, daecl_slice s2, size_t n,
                            daecl_err *err)
{
    ((daecl__ocl *)ctx)->updated = 1;
    return daecl__ocl_optim_update(ctx, step, w, g, s1, s2, n, err);
}

static const daecl_backend_ops ops = {
    .size = sizeof(daecl_backend_ops),
    .open = ocl_open,
    .close = ocl_close,
    .describe = ocl_describe,
    .alloc = ocl_alloc,
    .free = ocl_free,
    .write = ocl_write,
    .read = ocl_read,
    .copy = ocl_copy,
    .gemm = daecl__ocl_gemm,
    .bias_act = daecl__ocl_bias_act,
    .act_grad = daecl__ocl_act_grad,
    .col_sum = daecl__ocl_col_sum,
    .sum = daecl__ocl_sum,
    .gather = daecl__ocl_gather,
    .softmax_xent = daecl__ocl_softmax_xent,
    .optim_update = ocl_optim_update,
    .finish = ocl_finish,
    .fill = ocl_fill,
    .get_extension = ocl_get_extension,
    .bind = daecl__ocl_bind,
    .unbind = daecl__ocl_unbind,
    .corrupt = daecl__ocl_corrupt,
    .lik_loss_grad = daecl__ocl_lik_loss_grad,
    .lik_mean = daecl__ocl_lik_mean,
    .lik_sample = daecl__ocl_lik_sample,
    .act_grad_col_sum = daecl__ocl_act_grad_col_sum,
    .lik_loss_grad_sums = daecl__ocl_lik_loss_grad_sums,
    .optim_update_split = daecl__ocl_optim_update_split,
};

/* Schema order is what ocl_device.c reads: platform, type, index, binaries,
 * gemm, gemm_cpu. ENUM choices put the default first, so index 0 is the default. */
static const daecl_param_spec params[] = {
    {.name = "platform",
     .type = DAECL_PARAM_STRING,
     .def_str = "",
     .doc = "use a platform whose name or vendor contains this text (case-insensitive, e.g. "
            "NVIDIA, pocl); empty: any; Oclgrind only when named here"},
    {.name = "type",
     .type = DAECL_PARAM_ENUM,
     .def = {0, 0},
     .def_str = "any",
     .choices = "any|gpu|cpu|accelerator",
     .doc = "kind of device; any prefers a GPU, then an accelerator, then a CPU"},
    {.name = "index",
     .type = DAECL_PARAM_INT,
     .def = {-1, 0},
     .min = -1,
     .max = 1000,
     .doc = "the N-th matching device (0-based, counted across platforms as `daecl devices` "
            "lists them); -1: the one with the most compute units"},
    {.name = "binaries",
     .type = DAECL_PARAM_STRING,
     .def_str = "",
     .doc = "folder of program binaries from `daecl precompile --out DIR`; when set nothing is "
            "compiled and GEMMs run on daecl's own kernel (for devices without a compiler)"},
    {.name = "gemm",
     .type = DAECL_PARAM_ENUM,
     .def = {0, 0},
     .def_str = "auto",
     .choices = "auto|clblast|daecl|daecl_cpu",
     .doc = "GEMM implementation: CLBlast, daecl's own tiled kernel (GPU-style), daecl's CPU "
            "kernels (register tiles of wide vectors, for POCL; variant in gemm_cpu), or auto "
            "(daecl's CPU kernels on a CPU device, else CLBlast; the tiled kernel when binaries "
            "is set; per shape the fastest where `daecl tune` measured them)"},
    {.name = "gemm_cpu",
     .type = DAECL_PARAM_STRING,
     .def_str = "",
     .doc = "the variant of daecl's CPU GEMM kernels that gemm: daecl_cpu (and auto on a CPU "
            "device) runs, e.g. \"MR=4 NV=2 VW=16 KU=1\" (MR x NV registers of VW lanes per "
            "work-item, k unrolled KU times); empty: MR=4 NV=4 VW=16 KU=1 where the device "
            "prefers 16 lanes, else MR=4 NV=2 VW=8 KU=1"},
};

static const daecl_plugin plugin = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_BACKEND),
    .name = "opencl",
    .version = "1.0.0",
    .summary = "any OpenCL 1.2 device (GPU, accelerator, CPU through POCL); GEMM through "
               "CLBlast or daecl's own kernel",
    .license = "MIT",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .init = ocl_init,
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &plugin;
}
