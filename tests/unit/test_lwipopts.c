/*
 * The lwIP library we link must be the one built from Debian's source with
 * ipsec/lwip/lwipopts.h: a library built with other options (Debian's own
 * liblwip, a stale build, a wrong include path) fails here loudly.
 * Values come from the library itself (lwip_build_info.c is compiled with
 * the library's flags); this file includes no lwIP header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ipsec/lwip/lwip_build_info.h"

static const struct lwip_build_info *info = &esproxy_lwip_build_info;

static void test_lwip_is_version_2_1_3(void **state)
{
    (void)state;
    assert_int_equal(info->version_major, 2);
    assert_int_equal(info->version_minor, 1);
    assert_int_equal(info->version_revision, 3);
}

static void test_lwip_runs_without_os_or_socket_api(void **state)
{
    (void)state;
    assert_int_equal(info->no_sys, 1);
    assert_int_equal(info->lwip_socket, 0);
    assert_int_equal(info->lwip_netconn, 0);
    assert_int_equal(info->lwip_ipv6, 0);
    assert_int_equal(info->lwip_udp, 0);
    assert_int_equal(info->lwip_arp, 0);
    assert_int_equal(info->lwip_single_netif, 1);
    assert_int_equal(info->lwip_netif_loopback, 0);
    assert_int_equal(info->ip_forward, 0);
}

static void test_tcp_windows_are_at_least_one_mebibyte_with_scaling(void **state)
{
    (void)state;
    assert_true(info->tcp_wnd >= 1024 * 1024);
    assert_true(info->tcp_snd_buf >= 1024 * 1024);
    assert_int_equal(info->wnd_scale, 1);
    /* the scaled 16-bit window must cover TCP_WND */
    assert_true((0xffffu << info->tcp_rcv_scale) >= info->tcp_wnd);
    assert_int_equal(info->tcp_mss, 1460);
}

static void test_sack_generation_and_out_of_order_queue_are_on(void **state)
{
    (void)state;
    assert_int_equal(info->sack_out, 1);
    assert_true(info->max_sack_num >= 4);
    assert_int_equal(info->queue_ooseq, 1);
}

static void test_memory_and_packet_layout_suit_esp(void **state)
{
    (void)state;
    assert_int_equal(info->mem_libc_malloc, 1);
    assert_int_equal(info->memp_mem_malloc, 1);
    assert_int_equal(info->tx_single_pbuf, 1);
}

static void test_isn_hook_and_wide_port_range_are_configured(void **state)
{
    (void)state;
    assert_int_equal(info->isn_hook, 1);
    assert_int_equal(info->local_port_start, 0x4000);
    assert_int_equal(info->local_port_end, 0xffff);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lwip_is_version_2_1_3),
        cmocka_unit_test(test_lwip_runs_without_os_or_socket_api),
        cmocka_unit_test(test_tcp_windows_are_at_least_one_mebibyte_with_scaling),
        cmocka_unit_test(test_sack_generation_and_out_of_order_queue_are_on),
        cmocka_unit_test(test_memory_and_packet_layout_suit_esp),
        cmocka_unit_test(test_isn_hook_and_wide_port_range_are_configured),
    };

    return cmocka_run_group_tests_name("lwipopts", tests, NULL, NULL);
}
