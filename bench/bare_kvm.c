/* The floor for bench/kut.sh: the least a VMM must do to run a trivial
 * multiboot kernel on KVM, with the same VM shape Ember gives a test kernel
 * (in-kernel irqchip and PIT, N vCPUs, RAM in a memfd), and nothing else:
 * no CPUID/MSR set-up, no ACPI, no devices, no threads. It loads the ELF32
 * PT_LOAD segments, enters the BSP in 32-bit protected mode and runs it
 * until an OUT to port 0xf4, then exits (V << 1) | 1 like isa-debug-exit.
 * Serial output (port 0x3f8) goes to stdout. When fd 3 is open at start,
 * the exit code is written there first (like ember run --result-fd 3).
 * Usage: bare_kvm KERNEL [NCPUS] [MEM_MIB] */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what)
{
	perror(what);
	exit(6);
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	*s = (struct kvm_segment){ .limit = 0xffffffff, .selector = sel, .type = type,
				   .present = 1, .db = 1, .s = 1, .g = 1 };
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bare_kvm KERNEL [NCPUS] [MEM_MIB]\n");
		return 2;
	}
	int result_fd = fcntl(3, F_GETFD) >= 0 ? 3 : -1;
	int ncpus = argc > 2 ? atoi(argv[2]) : 1;
	size_t mem = (size_t)(argc > 3 ? atoi(argv[3]) : 64) << 20;

	int kf = open(argv[1], O_RDONLY);
	struct stat st;
	if (kf < 0 || fstat(kf, &st) < 0)
		die(argv[1]);
	const uint8_t *k = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, kf, 0);
	if (k == MAP_FAILED)
		die("mmap kernel");
	Elf32_Ehdr eh;
	memcpy(&eh, k, sizeof(eh));
	if ((size_t)st.st_size < sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS32) {
		fprintf(stderr, "%s: not an ELF32\n", argv[1]);
		return 2;
	}

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	int memfd = memfd_create("bare-ram", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, (off_t)mem) < 0)
		die("memfd");
	uint8_t *ram = mmap(NULL, mem, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (ram == MAP_FAILED)
		die("mmap ram");
	struct kvm_userspace_memory_region r = { .slot = 0, .memory_size = mem,
						 .userspace_addr = (uintptr_t)ram };
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0 || ioctl(vm, KVM_CREATE_PIT2, &pit) < 0)
		die("irqchip/PIT");

	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf32_Phdr ph;
		memcpy(&ph, k + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD)
			continue;
		if (ph.p_paddr + (uint64_t)ph.p_memsz > mem || ph.p_offset + (uint64_t)ph.p_filesz > (uint64_t)st.st_size)
			return 2;
		memcpy(ram + ph.p_paddr, k + ph.p_offset, ph.p_filesz);
	}

	long run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	int bsp = -1;
	for (int i = 0; i < ncpus; i++) {
		int fd = ioctl(vm, KVM_CREATE_VCPU, i);
		if (fd < 0)
			die("KVM_CREATE_VCPU");
		if (i == 0)
			bsp = fd;
	}
	struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, bsp, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");
	struct kvm_sregs sregs;
	if (ioctl(bsp, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	seg(&sregs.cs, 0x10, 0xb);
	seg(&sregs.ds, 0x18, 0x3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 = 0x11;
	if (ioctl(bsp, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
	struct kvm_regs regs = { .rip = eh.e_entry, .rflags = 2, .rax = 0x2BADB002 };
	if (ioctl(bsp, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");

	for (;;) {
		if (ioctl(bsp, KVM_RUN, 0) < 0)
			die("KVM_RUN");
		if (run->exit_reason != KVM_EXIT_IO) {
			fprintf(stderr, "bare_kvm: exit reason %u\n", run->exit_reason);
			return 4;
		}
		uint8_t *data = (uint8_t *)run + run->io.data_offset;
		if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == 0x3f8) {
			fwrite(data, 1, run->io.size, stdout);
		} else if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == 0xf4) {
			uint32_t v = 0;
			memcpy(&v, data, run->io.size < 4 ? run->io.size : 4);
			uint8_t code = (uint8_t)((v << 1) | 1);
			fflush(stdout);
			if (result_fd >= 0 && write(result_fd, &code, 1) != 1)
				return 6;
			return code;
		} else if (run->io.direction == KVM_EXIT_IO_IN) {
			memset(data, 0xff, (size_t)run->io.size * run->io.count);
		}
	}
}
