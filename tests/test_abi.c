/* daecl tests — the plugin ABI 2.1 layout is pinned: these offsets and
 * sizes may only grow by appending. A reordered or resized field fails the
 * build (static asserts) before it can break a plugin built against older
 * headers. Every table is here: the descriptor, the host table, the kinds'
 * ops tables, the backend table and its extension tables, the comm table
 * and its info, and every struct
 * that crosses the ABI. The numbers are for the LP64 data model (x86-64,
 * arm64 Linux). */
#include <stddef.h>

#include "daecl/backend.h"
#include "daecl/comm.h"
#include "daecl/elementwise.h"
#include "tests/support.h"

#if UINTPTR_MAX == 0xffffffffffffffffu
#define PIN(T, f, off) _Static_assert(offsetof(T, f) == (off), #T "." #f " moved")
#define SIZE(T, n) _Static_assert(sizeof(T) == (n), "sizeof(" #T ") changed")
PIN(daecl_plugin, size, 0);
PIN(daecl_plugin, abi_major, 4);
PIN(daecl_plugin, abi_minor, 6);
PIN(daecl_plugin, abi_sizes, 8);
PIN(daecl_plugin, kind, 12);
PIN(daecl_plugin, name, 16);
PIN(daecl_plugin, version, 24);
PIN(daecl_plugin, summary, 32);
PIN(daecl_plugin, license, 40);
PIN(daecl_plugin, params, 48);
PIN(daecl_plugin, n_params, 56);
PIN(daecl_plugin, param_size, 60);
PIN(daecl_plugin, init, 64);
PIN(daecl_plugin, check, 72);
PIN(daecl_plugin, ops, 80);
SIZE(daecl_plugin, 88);
PIN(daecl_host, size, 0);
PIN(daecl_host, abi_major, 4);
PIN(daecl_host, abi_minor, 6);
PIN(daecl_host, log, 8);
PIN(daecl_host, error, 16);
PIN(daecl_host, alloc, 24);
PIN(daecl_host, free, 32);
PIN(daecl_host, cache_dir, 40);
PIN(daecl_host, write_file_atomic, 48);
PIN(daecl_host, vlog, 56);
PIN(daecl_host, verror, 64);
SIZE(daecl_host, 72);
PIN(daecl_param_spec, name, 0);
PIN(daecl_param_spec, type, 8);
PIN(daecl_param_spec, def, 16);
PIN(daecl_param_spec, def_str, 32);
PIN(daecl_param_spec, min, 40);
PIN(daecl_param_spec, max, 48);
PIN(daecl_param_spec, choices, 56);
PIN(daecl_param_spec, doc, 64);
SIZE(daecl_param_spec, 72);
PIN(daecl_param_value, num, 0);
PIN(daecl_param_value, str, 16);
SIZE(daecl_param_value, 24);
/* The noise key 2.0 (plugin.h). */
PIN(daecl_noise_key, seed, 0);
PIN(daecl_noise_key, stream, 8);
PIN(daecl_noise_key, stage, 12);
PIN(daecl_noise_key, substep, 16);
PIN(daecl_noise_key, epoch, 20);
PIN(daecl_noise_key, pos0, 24);
SIZE(daecl_noise_key, 32);
PIN(daecl_shape, rank, 0);
PIN(daecl_shape, dims, 4);
SIZE(daecl_shape, 20);
PIN(daecl_corruption_ops, size, 0);
PIN(daecl_corruption_ops, host_apply, 8);
PIN(daecl_corruption_ops, cl_source, 16);
PIN(daecl_corruption_ops, granularity, 24);
SIZE(daecl_corruption_ops, 32);
PIN(daecl_likelihood_ops, size, 0);
PIN(daecl_likelihood_ops, params_per_dim, 4);
PIN(daecl_likelihood_ops, host_loss_grad, 8);
PIN(daecl_likelihood_ops, host_mean, 16);
PIN(daecl_likelihood_ops, host_sample, 24);
PIN(daecl_likelihood_ops, cl_source, 32);
PIN(daecl_likelihood_ops, support, 40);
PIN(daecl_likelihood_ops, support_lo, 48);
PIN(daecl_likelihood_ops, support_hi, 56);
PIN(daecl_likelihood_ops, data_lo, 64);
PIN(daecl_likelihood_ops, data_hi, 72);
SIZE(daecl_likelihood_ops, 80);
PIN(daecl_err, status, 0);
PIN(daecl_err, line, 4);
PIN(daecl_err, col, 8);
PIN(daecl_err, file, 12);
PIN(daecl_err, msg, 524);
SIZE(daecl_err, 1548);
PIN(daecl_slice, buf, 0);
PIN(daecl_slice, off, 8);
SIZE(daecl_slice, 16);
PIN(daecl_optim_step, kind, 0);
PIN(daecl_optim_step, nesterov, 4);
PIN(daecl_optim_step, lr, 8);
PIN(daecl_optim_step, momentum, 12);
PIN(daecl_optim_step, weight_decay, 16);
PIN(daecl_optim_step, beta1, 20);
PIN(daecl_optim_step, beta2, 24);
PIN(daecl_optim_step, eps, 28);
PIN(daecl_optim_step, bias_corr1, 32);
PIN(daecl_optim_step, bias_corr2, 36);
SIZE(daecl_optim_step, 40);
PIN(daecl_device_info, platform, 0);
PIN(daecl_device_info, name, 128);
PIN(daecl_device_info, vendor, 256);
PIN(daecl_device_info, type, 384);
PIN(daecl_device_info, c_version, 400);
PIN(daecl_device_info, driver, 464);
PIN(daecl_device_info, platform_index, 528);
PIN(daecl_device_info, device_index, 532);
PIN(daecl_device_info, compute_units, 536);
PIN(daecl_device_info, global_mem_bytes, 544);
PIN(daecl_device_info, max_alloc_bytes, 552);
PIN(daecl_device_info, fp16, 560);
PIN(daecl_device_info, fp64, 561);
PIN(daecl_device_info, compiler, 562);
PIN(daecl_device_info, is_default, 563);
PIN(daecl_device_info, note, 564);
SIZE(daecl_device_info, 824);
PIN(daecl_backend_ops, size, 0);
/* the required core */
PIN(daecl_backend_ops, open, 8);
PIN(daecl_backend_ops, close, 16);
PIN(daecl_backend_ops, describe, 24);
PIN(daecl_backend_ops, alloc, 32);
PIN(daecl_backend_ops, free, 40);
PIN(daecl_backend_ops, write, 48);
PIN(daecl_backend_ops, read, 56);
PIN(daecl_backend_ops, copy, 64);
PIN(daecl_backend_ops, gemm, 72);
PIN(daecl_backend_ops, bias_act, 80);
PIN(daecl_backend_ops, act_grad, 88);
PIN(daecl_backend_ops, col_sum, 96);
PIN(daecl_backend_ops, sum, 104);
PIN(daecl_backend_ops, gather, 112);
PIN(daecl_backend_ops, softmax_xent, 120);
PIN(daecl_backend_ops, optim_update, 128);
PIN(daecl_backend_ops, finish, 136);
/* optional with the core's fallback, tooling, the bind group */
PIN(daecl_backend_ops, fill, 144);
PIN(daecl_backend_ops, get_extension, 152);
PIN(daecl_backend_ops, bind, 160);
PIN(daecl_backend_ops, unbind, 168);
PIN(daecl_backend_ops, corrupt, 176);
PIN(daecl_backend_ops, lik_loss_grad, 184);
PIN(daecl_backend_ops, lik_mean, 192);
PIN(daecl_backend_ops, lik_sample, 200);
/* 2.1: fused ops */
PIN(daecl_backend_ops, act_grad_col_sum, 208);
PIN(daecl_backend_ops, lik_loss_grad_sums, 216);
PIN(daecl_backend_ops, optim_update_split, 224);
SIZE(daecl_backend_ops, 232);
PIN(daecl_ext_devices, size, 0);
PIN(daecl_ext_devices, list_devices, 8);
SIZE(daecl_ext_devices, 16);
PIN(daecl_ext_precompile, size, 0);
PIN(daecl_ext_precompile, precompile, 8);
SIZE(daecl_ext_precompile, 16);
PIN(daecl_ext_tune_gemm, size, 0);
PIN(daecl_ext_tune_gemm, tune_gemm, 8);
SIZE(daecl_ext_tune_gemm, 16);
PIN(daecl_gemm_shape, trans_a, 0);
PIN(daecl_gemm_shape, trans_b, 4);
PIN(daecl_gemm_shape, m, 8);
PIN(daecl_gemm_shape, n, 16);
PIN(daecl_gemm_shape, k, 24);
PIN(daecl_gemm_shape, runs, 32);
PIN(daecl_gemm_shape, beta, 36);
PIN(daecl_gemm_shape, before, 40);
PIN(daecl_gemm_shape, after, 48);
PIN(daecl_gemm_shape, choice, 56);
SIZE(daecl_gemm_shape, 120);
PIN(daecl_comm_ops, size, 0);
PIN(daecl_comm_ops, open, 8);
PIN(daecl_comm_ops, close, 16);
PIN(daecl_comm_ops, allreduce, 24);
PIN(daecl_comm_ops, broadcast, 32);
PIN(daecl_comm_ops, allgather, 40);
PIN(daecl_comm_ops, barrier, 48);
PIN(daecl_comm_ops, abort, 56);
SIZE(daecl_comm_ops, 64);
PIN(daecl_comm_info, rank, 0);
PIN(daecl_comm_info, size, 4);
PIN(daecl_comm_info, local_rank, 8);
PIN(daecl_comm_info, local_size, 12);
PIN(daecl_comm_info, host, 16);
PIN(daecl_comm_info, library, 80);
SIZE(daecl_comm_info, 208);
#endif

/* The head a loader reads before it trusts anything else sits in the first
 * 16 bytes, identical in every data model. */
static void test_descriptor_head_is_fixed_width(void **state)
{
    (void)state;
    assert_int_equal(offsetof(daecl_plugin, size), 0);
    assert_int_equal(sizeof(((daecl_plugin *)0)->size), 4);
    assert_int_equal(offsetof(daecl_plugin, abi_major), 4);
    assert_int_equal(offsetof(daecl_plugin, abi_minor), 6);
    assert_int_equal(offsetof(daecl_plugin, abi_sizes), 8);
    assert_int_equal(offsetof(daecl_plugin, kind), 12);
}

/* Every ops table, extension table and the host table start with their own
 * 32-bit size. */
static void test_tables_start_with_their_size(void **state)
{
    (void)state;
    assert_int_equal(offsetof(daecl_corruption_ops, size), 0);
    assert_int_equal(offsetof(daecl_likelihood_ops, size), 0);
    assert_int_equal(offsetof(daecl_backend_ops, size), 0);
    assert_int_equal(offsetof(daecl_host, size), 0);
    assert_int_equal(offsetof(daecl_ext_devices, size), 0);
    assert_int_equal(offsetof(daecl_ext_precompile, size), 0);
    assert_int_equal(offsetof(daecl_ext_tune_gemm, size), 0);
    assert_int_equal(offsetof(daecl_comm_ops, size), 0);
    assert_int_equal(sizeof(((daecl_backend_ops *)0)->size), 4);
    assert_int_equal(sizeof(((daecl_comm_ops *)0)->size), 4);
}

/* The frozen head: a 1.x plugin is still read and refused by its major,
 * and the head macro fills the schema's element size. */
static void test_abi_is_2_1_and_the_head_fills_the_element_size(void **state)
{
    (void)state;
    assert_int_equal(DAECL_ABI_MAJOR, 2);
    assert_int_equal(DAECL_ABI_MINOR, 1);
    static const daecl_plugin p = {DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION)};
    assert_int_equal(p.size, sizeof(daecl_plugin));
    assert_int_equal(p.abi_major, 2);
    assert_int_equal(p.param_size, sizeof(daecl_param_spec));
}

static void test_sizes_check_describes_this_machine(void **state)
{
    (void)state;
    assert_int_equal(DAECL_ABI_SIZES & 0xff, sizeof(float));
    assert_int_equal((DAECL_ABI_SIZES >> 8) & 0xff, sizeof(size_t));
    assert_int_equal((DAECL_ABI_SIZES >> 16) & 0xff, sizeof(void *));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_head_is_fixed_width),
        cmocka_unit_test(test_tables_start_with_their_size),
        cmocka_unit_test(test_abi_is_2_1_and_the_head_fills_the_element_size),
        cmocka_unit_test(test_sizes_check_describes_this_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
