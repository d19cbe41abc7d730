/* What Ember opens on the host for a VM: the kernel and initrd files
 * (mapped read-only), the disk images, the taps and /dev/kvm. `ember run`
 * opens them once, before it jails itself and installs its seccomp
 * filters, and every VM of the process (guest restarts, the save/restore
 * self-test) uses the same ones. */
#ifndef EMBER_HOST_H
#define EMBER_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* A file mapped read-only; owned says whether unmap_file() unmaps it. */
struct file_map {
	const uint8_t *data;
	size_t size;
	bool owned;
};

struct host_files {
	int kvm_fd;
	const char *backend;          /* kernel module behind /dev/kvm */
	struct file_map kernel, initrd;
	/* cfg->disks[i] and cfg->nets[i], in order; each VM's devices work
	 * on duplicates */
	unsigned ndisks, ntaps;
	int disk_fd[CONFIG_MAX_DISKS];
	int tap_fd[CONFIG_MAX_NETS];
	char tap_name[CONFIG_MAX_NETS][16];
	/* The host's shmem THP setting (mem_thp_host_setting): /sys is out of
	 * reach once jailed, and a restarted VM's RAM follows the first's. */
	char shmem_thp[16];
};

/* Map a regular, non-empty file. 0, or -errno with "<what> <path>: why" in err. */
int map_file(const char *what, const char *path, struct file_map *f, char *err, size_t errlen);
void unmap_file(struct file_map *f);

/* The user's files: map the kernel and initrd, open the disks and the
 * taps; and read the shmem THP setting. 0, or EXIT_USAGE with the message
 * printed. /dev/kvm is not opened yet (kvm_fd -1). */
int host_files_open(struct host_files *h, const struct vm_config *cfg);
/* Then /dev/kvm (checking the API version) into h, and name the backend:
 * after every check of the user's input, so that bad input is refused
 * alike on a host with KVM and on one without. 0, or EXIT_VMM_ERROR with
 * the message printed. */
int host_files_open_kvm(struct host_files *h);
/* Safe to call again, and after a failed host_files_open. */
void host_files_close(struct host_files *h);

/* /dev/kvm, checked, or -errno with the message printed. */
int host_open_kvm(void);

#endif
