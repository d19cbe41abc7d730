/* `ember seccomp`: the allow list of each kind of thread, from the table
 * the filters are built from (src/sandbox/filters.c). */
#ifndef EMBER_CMD_SECCOMP_H
#define EMBER_CMD_SECCOMP_H

int cmd_seccomp(int argc, char **argv);

#endif
