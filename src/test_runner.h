/* `ember test`: run many bare-metal test kernels (kvm-unit-tests .flat
 * files, Ember's own tests/guest kernels), each in its own `ember run`
 * child with its own timeout, several at once, and summarize. */
#ifndef EMBER_TEST_RUNNER_H
#define EMBER_TEST_RUNNER_H

#include <stdbool.h>
#include <stddef.h>

enum test_verdict { TEST_PASS, TEST_FAIL, TEST_SKIP };

/* What one child's end means. status is as from waitpid(); timed_out when
 * the runner killed it at its deadline. A guest's debug-exit code V makes
 * `ember run` exit (V << 1) | 1, as kvm-unit-tests expects: 1 = pass,
 * 3 = fail, 77 = skip. The reason (for anything but a pass) goes to why.
 * Pure: unit-tested. */
enum test_verdict test_classify(int status, bool timed_out, double timeout_s, char *why, size_t len);

/* `ember test` (argv[0] is "test"); returns the process exit status: 0 when
 * nothing failed, 1 when something did, 2 for bad usage. */
int cmd_test(int argc, char **argv);

#endif
