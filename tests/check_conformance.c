/*
 * check_conformance.c - runs the conformance suite against one store URI.
 *
 * The base URI is argv[1], else $AT_TEST_STORE, else "memory:".  A backend's
 * author runs this binary with their own URI (a sqlite: directory gives
 * every test a fresh file, a redis:// URI a fresh key prefix; see
 * tests/conformance.h).  AT_TEST_REAL_CLOCK=1 keeps a backend that takes a
 * manual clock on real time instead.  Exit status 0 only when every test passed, so
 * `make check` and CI see a failure; CK_FORK=no and valgrind work as usual.
 */
#include <stdio.h>
#include <stdlib.h>

#include "conformance.h"

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : getenv("AT_TEST_STORE");
    SRunner *sr;
    int failed;

    if (uri == NULL || uri[0] == '\0')
        uri = "memory:";
    printf("conformance suite against \"%s\"\n", uri);
    sr = srunner_create(at_conformance_suite(uri));
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
