/* Kernel image formats Ember boots: a Linux bzImage through the 64-bit boot
 * protocol, and any ELF64 (Linux vmlinux, guest-kit kernels) loaded at its
 * physical addresses. Parsing and the fit check are pure (no guest RAM, no
 * KVM) so they run before the VM exists and can be unit-tested and fuzzed;
 * loading writes through the checked guest-memory accessors. */
#ifndef EMBER_X86_KERNEL_H
#define EMBER_X86_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

enum kernel_format { KERNEL_BZIMAGE = 1, KERNEL_ELF64 };

/* ELF note that asks Ember to start every vCPU at the entry point in long
 * mode (guest-kit kernels); name "Ember". */
#define EMBER_NOTE_NAME        "Ember"
#define EMBER_NOTE_START_ALL   0x454d0001u

/* Where a bzImage's protected-mode part is loaded (as QEMU does). */
#define BZIMAGE_LOAD_ADDR      0x100000ULL

struct kernel_image {
	enum kernel_format format;
	const uint8_t *data;
	size_t size;
	/* bzImage */
	size_t setup_size;          /* real-mode part, skipped */
	uint16_t protocol;          /* boot protocol version */
	uint32_t init_size;         /* memory the kernel needs from its load address */
	uint32_t initrd_addr_max;
	uint32_t cmdline_size;
	/* ELF64 */
	uint64_t entry;             /* physical entry point */
	bool start_all_vcpus;       /* the Ember note is present */
	/* both: the physical range the kernel occupies once loaded */
	uint64_t load_start, load_end;
};

/* Recognize and check the image. 0, or -EINVAL with a reason in err. */
int kernel_parse(const uint8_t *data, size_t size, struct kernel_image *k, char *err, size_t errlen);

/* Whether [load_start, load_end) is RAM (in one region) of m, which may be
 * a mem_layout() with no memory behind it. 0, or -ENOSPC with err. */
int kernel_fits(const struct kernel_image *k, const struct guest_mem *m, char *err, size_t errlen);

/* Copy a kernel that fits into fresh (all-zero) guest RAM with m's layout;
 * it is entered at k->entry (for a bzImage the 64-bit entry, load address
 * + 0x200). 0, or -EFAULT when it does not fit after all. */
int kernel_load(const struct kernel_image *k, const struct guest_mem *m);

#endif
