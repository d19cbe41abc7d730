/* libFuzzer target: the kernel loaders as `ember run` drives them
 * (boot_prepare, which plans the boot with boot_plan_make and writes the
 * plan): the input is the --kernel file, which may be a bzImage,
 * an ELF64 (vmlinux, guest-kit) or a multiboot kernel (ELF32, ELF64, the
 * a.out kludge), booted into guest RAM between guard pages with an initrd
 * and a command line. Nothing in it may crash Ember or touch memory outside
 * guest RAM, and a kernel that is accepted starts inside RAM. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "arch/x86/multiboot.h"
#include "host.h"
#include "mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "check failed: %s\n", #cond); abort(); } } while (0)

#define RAM (32 * MiB)

static struct guest_mem mem;
static uint8_t initrd[64 * 1024];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!mem.host && mem_create(&mem, RAM))
		abort();
	/* A pointer that is never NULL: an empty kernel is still "given". */
	static const uint8_t empty[1];
	struct host_files files = {
		.kvm_fd = -1,
		.kernel = { size ? data : empty, size, false },
		.initrd = { initrd, sizeof(initrd), false },
	};
	struct vm_config cfg = {
		.kernel = "fuzz-kernel", .initrd = "fuzz-initrd", .cmdline = "console=ttyS0 fuzz",
		.mem_size = RAM, .ncpus = 2, .files = &files, .test_violate = -1,
	};
	struct boot_info b;
	char err[512];
	if (boot_prepare(&mem, &cfg, &b, err, sizeof(err)) == 0) {
		CHECK(mem_is_ram(&mem, b.entry, 1));
		CHECK(b.mode == BOOT_LONG64 || b.mode == BOOT_PROT32);
		if (b.mode == BOOT_PROT32)
			CHECK(mem_is_ram(&mem, b.mb_info, sizeof(struct mb_info)));
	} else {
		CHECK(err[0] != '\0');
	}
	return 0;
}
