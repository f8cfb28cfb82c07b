/* bus/sign.c: secrets and Standard Webhooks signatures, against the
 * standard's own test vector. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bus/sign.h"

static void test_standard_vector(void **state)
{
    (void)state;
    unsigned char key[BUS_SECRET_BYTES_MAX];
    size_t key_len;
    assert_true(bus_secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, &key_len));
    assert_int_equal(key_len, 24);
    const char *body = "{\"test\": 2432232314}";
    char sig[BUS_SIGNATURE_BYTES];
    assert_int_equal(bus_sign(key, key_len, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                              strlen(body), sig),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

/* A signer keyed once signs message after message as the one-shot does:
 * each signature starts from the keyed state, not from the last one. */
static void test_signer_reuses_its_key(void **state)
{
    (void)state;
    unsigned char key[BUS_SECRET_BYTES_MAX];
    size_t key_len;
    assert_true(bus_secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, &key_len));
    struct bus_signer *sg;
    assert_int_equal(bus_signer_new(key, key_len, &sg), 0);
    const char *body = "{\"test\": 2432232314}";
    char sig[BUS_SIGNATURE_BYTES], again[BUS_SIGNATURE_BYTES];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bus_signer_sign(sg, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                                         strlen(body), sig),
                         0);
        assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_int_equal(bus_signer_sign(sg, "msg_other", 1614265331, "{}", 2, sig), 0);
        assert_int_equal(bus_sign(key, key_len, "msg_other", 1614265331, "{}", 2, again), 0);
        assert_string_equal(sig, again);
    }
    bus_signer_free(sg);
}

static void test_new_secret_round_trips(void **state)
{
    (void)state;
    char a[BUS_SECRET_BYTES_MAX + 1], b[BUS_SECRET_BYTES_MAX + 1];
    assert_int_equal(bus_secret_new(a), 0);
    assert_int_equal(bus_secret_new(b), 0);
    assert_string_not_equal(a, b);
    assert_memory_equal(a, "whsec_", 6);
    assert_int_equal(strlen(a), 6 + 44);
    unsigned char key[BUS_SECRET_BYTES_MAX];
    size_t key_len;
    assert_true(bus_secret_key(a, key, &key_len));
    assert_int_equal(key_len, BUS_SECRET_KEY_BYTES);
}

static void test_bad_secrets(void **state)
{
    (void)state;
    unsigned char key[BUS_SECRET_BYTES_MAX];
    size_t key_len;
    const char *bad[] = {"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_abc",
                         "whsec_!!!!", "whsec_" /* 72 chars: 54 bytes ok, 100: too long */
                         "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(bus_secret_key(bad[i], key, &key_len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standard_vector),
        cmocka_unit_test(test_signer_reuses_its_key),
        cmocka_unit_test(test_new_secret_round_trips),
        cmocka_unit_test(test_bad_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
