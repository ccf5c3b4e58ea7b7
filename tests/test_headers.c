/*
 * test_headers.c - the public headers compile together with the system
 * headers that already define bare AT_ macros (<fcntl.h>: AT_FDCWD,
 * AT_EACCESS; <elf.h>: AT_NULL, AT_EUID), and every public macro keeps its
 * sub-prefix so none of them collide.  Also checks that the error X-macro
 * gives distinct numbers, names and messages.
 */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include <asynctask.h>
#include <asynctask/store.h>

#ifndef AT_FDCWD
#error "<fcntl.h> should define AT_FDCWD"
#endif
#ifndef AT_NULL
#error "<elf.h> should define AT_NULL"
#endif

static const struct {
    int code;
    const char *name;
} k_errors[] = {
#define X(name, value, msg) {AT_ERR_##name, "AT_ERR_" #name},
    AT_ERR_MAP(X)
#undef X
};

int main(void)
{
    int bad = 0;
    size_t n = sizeof k_errors / sizeof k_errors[0];
    for (size_t i = 0; i < n; i++) {
        if (k_errors[i].code >= 0) {
            fprintf(stderr, "%s is not negative\n", k_errors[i].name);
            bad++;
        }
        if (strcmp(at_err_name(k_errors[i].code), k_errors[i].name) != 0) {
            fprintf(stderr, "at_err_name(%d) = %s\n", k_errors[i].code, at_err_name(k_errors[i].code));
            bad++;
        }
        for (size_t j = 0; j < i; j++)
            if (k_errors[j].code == k_errors[i].code || strcmp(at_strerror(k_errors[j].code),
                                                              at_strerror(k_errors[i].code)) == 0) {
                fprintf(stderr, "%s and %s share a number or message\n", k_errors[i].name, k_errors[j].name);
                bad++;
            }
    }
    if (at_version_number() != AT_VERSION_NUMBER) {
        fprintf(stderr, "header says %d, library says %u\n", AT_VERSION_NUMBER, at_version_number());
        bad++;
    }
    printf("%zu error codes checked, %d problems\n", n, bad);
    return bad ? 1 : 0;
}
