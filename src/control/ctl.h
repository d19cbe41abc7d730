/* `ember ctl`: a client for the control socket. */
#ifndef EMBER_CONTROL_CTL_H
#define EMBER_CONTROL_CTL_H

/* argv[0] is "ctl". Exit status: 0 ok, 1 the VM answered with an error,
 * 2 bad usage, 3 no connection, no reply or an unreadable one. */
int cmd_ctl(int argc, char **argv);

#endif
