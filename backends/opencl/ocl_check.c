/* daecl opencl backend — the one error checker: every OpenCL and CLBlast call
 * goes through daecl__ocl_check, which names the call, the code by its name
 * (OpenCL 1.2's, cl_khr_icd's and CLBlast's own) and what the user can do. */
#include <stdarg.h>
#include <stdio.h>

#include "ocl.h"

typedef struct code_entry {
    int code;
    const char *name;
} code_entry;

/* CLBlast's codes from -3 to -63 are OpenCL's own, so one table serves both;
 * its own codes (-1007 and below) carry CLBlast's C++ names. */
static const code_entry codes[] = {
    {0, "CL_SUCCESS"},
    {-1, "CL_DEVICE_NOT_FOUND"},
    {-2, "CL_DEVICE_NOT_AVAILABLE"},
    {-3, "CL_COMPILER_NOT_AVAILABLE"},
    {-4, "CL_MEM_OBJECT_ALLOCATION_FAILURE"},
    {-5, "CL_OUT_OF_RESOURCES"},
    {-6, "CL_OUT_OF_HOST_MEMORY"},
    {-7, "CL_PROFILING_INFO_NOT_AVAILABLE"},
    {-8, "CL_MEM_COPY_OVERLAP"},
    {-9, "CL_IMAGE_FORMAT_MISMATCH"},
    {-10, "CL_IMAGE_FORMAT_NOT_SUPPORTED"},
    {-11, "CL_BUILD_PROGRAM_FAILURE"},
    {-12, "CL_MAP_FAILURE"},
    {-13, "CL_MISALIGNED_SUB_BUFFER_OFFSET"},
    {-14, "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST"},
    {-15, "CL_COMPILE_PROGRAM_FAILURE"},
    {-16, "CL_LINKER_NOT_AVAILABLE"},
    {-17, "CL_LINK_PROGRAM_FAILURE"},
    {-18, "CL_DEVICE_PARTITION_FAILED"},
    {-19, "CL_KERNEL_ARG_INFO_NOT_AVAILABLE"},
    {-30, "CL_INVALID_VALUE"},
    {-31, "CL_INVALID_DEVICE_TYPE"},
    {-32, "CL_INVALID_PLATFORM"},
    {-33, "CL_INVALID_DEVICE"},
    {-34, "CL_INVALID_CONTEXT"},
    {-35, "CL_INVALID_QUEUE_PROPERTIES"},
    {-36, "CL_INVALID_COMMAND_QUEUE"},
    {-37, "CL_INVALID_HOST_PTR"},
    {-38, "CL_INVALID_MEM_OBJECT"},
    {-39, "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR"},
    {-40, "CL_INVALID_IMAGE_SIZE"},
    {-41, "CL_INVALID_SAMPLER"},
    {-42, "CL_INVALID_BINARY"},
    {-43, "CL_INVALID_BUILD_OPTIONS"},
    {-44, "CL_INVALID_PROGRAM"},
    {-45, "CL_INVALID_PROGRAM_EXECUTABLE"},
    {-46, "CL_INVALID_KERNEL_NAME"},
    {-47, "CL_INVALID_KERNEL_DEFINITION"},
    {-48, "CL_INVALID_KERNEL"},
    {-49, "CL_INVALID_ARG_INDEX"},
    {-50, "CL_INVALID_ARG_VALUE"},
    {-51, "CL_INVALID_ARG_SIZE"},
    {-52, "CL_INVALID_KERNEL_ARGS"},
    {-53, "CL_INVALID_WORK_DIMENSION"},
    {-54, "CL_INVALID_WORK_GROUP_SIZE"},
    {-55, "CL_INVALID_WORK_ITEM_SIZE"},
    {-56, "CL_INVALID_GLOBAL_OFFSET"},
    {-57, "CL_INVALID_EVENT_WAIT_LIST"},
    {-58, "CL_INVALID_EVENT"},
    {-59, "CL_INVALID_OPERATION"},
    {-60, "CL_INVALID_GL_OBJECT"},
    {-61, "CL_INVALID_BUFFER_SIZE"},
    {-62, "CL_INVALID_MIP_LEVEL"},
    {-63, "CL_INVALID_GLOBAL_WORK_SIZE"},
    {-64, "CL_INVALID_PROPERTY"},
    {-65, "CL_INVALID_IMAGE_DESCRIPTOR"},
    {-66, "CL_INVALID_COMPILER_OPTIONS"},
    {-67, "CL_INVALID_LINKER_OPTIONS"},
    {-68, "CL_INVALID_DEVICE_PARTITION_COUNT"},
    {-1001, "CL_PLATFORM_NOT_FOUND_KHR"},
    /* CLBlast's own (clblast_c.h, CLBlastStatusCode). */
    {-1024, "kNotImplemented"},
    {-1022, "kInvalidMatrixA"},
    {-1021, "kInvalidMatrixB"},
    {-1020, "kInvalidMatrixC"},
    {-1019, "kInvalidVectorX"},
    {-1018, "kInvalidVectorY"},
    {-1017, "kInvalidDimension"},
    {-1016, "kInvalidLeadDimA"},
    {-1015, "kInvalidLeadDimB"},
    {-1014, "kInvalidLeadDimC"},
    {-1013, "kInvalidIncrementX"},
    {-1012, "kInvalidIncrementY"},
    {-1011, "kInsufficientMemoryA"},
    {-1010, "kInsufficientMemoryB"},
    {-1009, "kInsufficientMemoryC"},
    {-1008, "kInsufficientMemoryX"},
    {-1007, "kInsufficientMemoryY"},
    {-2050, "kInsufficientMemoryTemp"},
    {-2049, "kInvalidBatchCount"},
    {-2048, "kInvalidOverrideKernel"},
    {-2047, "kMissingOverrideParameter"},
    {-2046, "kInvalidLocalMemUsage"},
    {-2045, "kNoHalfPrecision"},
    {-2044, "kNoDoublePrecision"},
    {-2043, "kInvalidVectorScalar"},
    {-2042, "kInsufficientMemoryScalar"},
    {-2041, "kDatabaseError"},
    {-2040, "kUnknownError"},
    {-2039, "kUnexpectedError"},
};

const char *daecl__ocl_code_name(int code)
{
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i].code == code)
            return codes[i].name;
    static char unknown[32];
    snprintf(unknown, sizeof unknown, "error %d", code);
    return unknown;
}

#define HINT_MEMORY "lower train.batch_size or use a smaller model"
#define HINT_DRIVER "update the device's OpenCL driver, or check the device with clinfo"
#define HINT_BUG "update the device's OpenCL driver; if that does not help, " DAECL__OCL_BUG

const char *daecl__ocl_code_hint(int code)
{
    switch (code) {
    case -4:    /* CL_MEM_OBJECT_ALLOCATION_FAILURE, CLBlast kTempBufferAllocFailure */
    case -5:    /* CL_OUT_OF_RESOURCES: also how some drivers report a kernel fault */
    case -6:    /* CL_OUT_OF_HOST_MEMORY */
    case -61:   /* CL_INVALID_BUFFER_SIZE */
    case -2050: /* kInsufficientMemoryTemp */
        return HINT_MEMORY;
    case -1:
    case -2:
        return "check the device with clinfo; another program may hold it, or its driver is "
               "not loaded";
    case -3:
    case -16:
        return "this device cannot compile OpenCL C: run `daecl precompile --out DIR` for it "
               "where it can, then set backend.binaries to DIR";
    case -11:
    case -15:
    case -17:
        return "the build log above says why";
    case -1001:
        return "install an OpenCL driver, e.g. `apt-get install pocl-opencl-icd` for CPUs, or "
               "your GPU vendor's OpenCL driver";
    case -2045:
    case -2044:
    case -2046:
    case -2041:
        return "use backend.gemm: daecl, daecl's own GEMM kernel";
    case -1024:
        return "CLBlast cannot do this on this device; use backend.gemm: daecl";
    default:
        if (code <= -1007 && code >= -1024)
            return DAECL__OCL_BUG; /* an argument CLBlast refused: ours to check */
        return code <= -30 && code >= -68 ? HINT_BUG : HINT_DRIVER;
    }
}

int daecl__ocl_fail(const daecl_host *host, daecl_err *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    daecl_plugin_verror(host, err, status, fmt, ap);
    va_end(ap);
    return status;
}

int daecl__ocl_check(const daecl_host *host, const char *device, int code, const char *call,
                     const char *what, daecl_err *err)
{
    if (code == 0)
        return 0;
    int status = (code == -4 || code == -6 || code == -2050) ? DAECL_ENOMEM : DAECL_EDEVICE;
    return daecl__ocl_fail(host, err, status, "%s%s%s%s failed%s%s: %s; %s", call, what ? "(" : "",
                           what ? what : "", what ? ")" : "", device ? " on " : "",
                           device ? device : "", daecl__ocl_code_name(code),
                           daecl__ocl_code_hint(code));
}

/* One log line through the host's va_list form. */
void daecl__ocl_say(const daecl__ocl *o, int level, const char *fmt, ...)
{
    if (!o->host || !o->host->vlog)
        return;
    va_list ap;
    va_start(ap, fmt);
    o->host->vlog(level, "opencl", fmt, ap);
    va_end(ap);
}
