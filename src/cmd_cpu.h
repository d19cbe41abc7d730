/* `ember cpu`: show the guest CPU model. */
#ifndef EMBER_CMD_CPU_H
#define EMBER_CMD_CPU_H

int cmd_cpu(int argc, char **argv);

#endif
