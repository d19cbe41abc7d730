/* libFuzzer target: a whole snapshot or migration stream through the real
 * loaders, as `ember run --restore` and `--incoming` run them
 * (vm_restore_load): the "vm" section builds a VM with vm_create() (the
 * machine the stream describes, with a disk and virtio-rng from the
 * "command line"), then RAM ("ram", "pages"), "sync", the irqchip, the PIT,
 * every device section (serial, acpi-pm, pci-host, virtio-blk, virtio-rng),
 * each vCPU's "cpu" section and the clock go through their loaders; a VM
 * that loaded is saved again. No /dev/kvm: the binary is linked with
 * -Wl,--wrap=ioctl,--wrap=close and every ioctl on a KVM file descriptor
 * goes to a fake KVM here that reads every byte the real one would read
 * from the argument and fills every byte it would write, so ASan sees a
 * loader that hands KVM a buffer shorter than the ioctl takes. Nothing in
 * the stream may crash, leak or touch memory outside its buffers.
 *
 * Seeds (tests/fuzz/corpus/stream/) come from this binary: with
 * FUZZ_STREAM_SEEDS=DIR it writes streams saved from its own VMs there
 * and exits. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "host.h"
#include "log.h"
#include "migration/state.h"
#include "migration/vmsave.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);
int __real_close(int fd);
int __wrap_close(int fd);

/* ---- the fake KVM ---------------------------------------------------------------------- */

#define MAX_FDS 4096
#define FAKE_XSAVE 4096
#define FAKE_NESTED (128 + 2 * 4096)   /* KVM_CAP_NESTED_STATE: header + VMCS12 + shadow */
#define MAX_CPUID 256                  /* KVM_MAX_CPUID_ENTRIES */
#define RUN_SIZE (3 * 4096)

static bool fake[MAX_FDS];
static struct kvm_cpuid2 *cpuid_set[MAX_FDS];   /* per vCPU: what KVM_SET_CPUID2 gave */
static volatile uint8_t sink;

/* A KVM object: a memfd, so that mmap of a vCPU's kvm_run works. */
static int fake_fd(void)
{
	int fd = memfd_create("fake-kvm", MFD_CLOEXEC);
	if (fd < 0 || fd >= MAX_FDS || ftruncate(fd, RUN_SIZE) < 0)
		abort();
	fake[fd] = true;
	return fd;
}

int __wrap_close(int fd)
{
	if (fd >= 0 && fd < MAX_FDS && fake[fd]) {
		fake[fd] = false;
		free(cpuid_set[fd]);
		cpuid_set[fd] = NULL;
	}
	return __real_close(fd);
}

/* Read every byte, as copy_from_user would. */
static void take(const void *p, size_t n)
{
	const volatile uint8_t *b = p;
	uint8_t x = 0;
	for (size_t i = 0; i < n; i++)
		x ^= b[i];
	sink ^= x;
}

static void give(void *p, size_t n)
{
	memset(p, 0, n);
}

/* KVM_GET_SUPPORTED_CPUID: this CPU's leaves, as a KVM would pass them. */
static int supported_cpuid(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 e[MAX_CPUID];
	unsigned n = 0;
	unsigned a, b, cx, d;
	static const unsigned bases[] = { 0, 0x80000000u };
	for (unsigned k = 0; k < 2; k++) {
		unsigned base = bases[k];
		__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(cx), "=d"(d) : "a"(base), "c"(0));
		unsigned max = a < base + 0x20 ? a : base + 0x20;
		for (unsigned f = base; f <= max && n < MAX_CPUID - 8; f++) {
			bool indexed = f == 4 || f == 7 || f == 0xb || f == 0xd || f == 0x1f;
			for (unsigned i = 0; i < (indexed ? 4u : 1u); i++) {
				__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(cx), "=d"(d) : "a"(f), "c"(i));
				e[n++] = (struct kvm_cpuid_entry2){ .function = f, .index = i, .eax = a, .ebx = b,
					.ecx = cx, .edx = d, .flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0 };
			}
		}
	}
	take(c, sizeof(*c));
	if (c->nent < n) {
		c->nent = n;
		errno = E2BIG;
		return -1;
	}
	c->nent = n;
	memcpy(c->entries, e, n * sizeof(e[0]));
	return 0;
}

static const uint32_t msr_index[] = {
	0x10, 0x1b, 0x3a, 0x48, 0x174, 0x175, 0x176, 0x1a0, 0x277, 0x6e0, 0xc0000080, 0xc0000081,
	0xc0000082, 0xc0000083, 0xc0000084, 0xc0000100, 0xc0000101, 0xc0000102, 0xc0000103,
};
#define NMSR (sizeof(msr_index) / sizeof(msr_index[0]))

static int check_extension(unsigned long cap)
{
	switch (cap) {
	case KVM_CAP_XSAVE2: return FAKE_XSAVE;
	case KVM_CAP_XSAVE: case KVM_CAP_SREGS2: case KVM_CAP_XCRS: case KVM_CAP_DEBUGREGS:
	case KVM_CAP_VCPU_EVENTS: case KVM_CAP_TSC_DEADLINE_TIMER: case KVM_CAP_IRQ_ROUTING:
	case KVM_CAP_IOEVENTFD: case KVM_CAP_IRQFD: case KVM_CAP_USER_MEMORY: case KVM_CAP_EXT_CPUID:
		return 1;
	case KVM_CAP_NESTED_STATE: return FAKE_NESTED;
	case KVM_CAP_MAX_VCPUS: case KVM_CAP_NR_VCPUS: return 64;
	default: return 0;
	}
}

#define NOT_VCPU INT_MIN

static int vcpu_ioctl(int fd, unsigned long req, void *arg)
{
	switch (req) {
	case KVM_SET_CPUID2: {
		struct kvm_cpuid2 *c = arg;
		take(c, sizeof(*c));
		if (c->nent > MAX_CPUID) {
			errno = E2BIG;
			return -1;
		}
		take(c->entries, c->nent * sizeof(c->entries[0]));
		struct kvm_cpuid2 *copy = malloc(sizeof(*c) + c->nent * sizeof(c->entries[0]));
		if (!copy)
			abort();
		memcpy(copy, c, sizeof(*c) + c->nent * sizeof(c->entries[0]));
		free(cpuid_set[fd]);
		cpuid_set[fd] = copy;
		return 0;
	}
	case KVM_GET_CPUID2: {
		struct kvm_cpuid2 *c = arg, *have = cpuid_set[fd];
		take(c, sizeof(*c));
		unsigned n = have ? have->nent : 0;
		if (c->nent < n) {
			errno = E2BIG;
			return -1;
		}
		c->nent = n;
		if (n)
			memcpy(c->entries, have->entries, n * sizeof(c->entries[0]));
		return 0;
	}
	case KVM_GET_MSRS: case KVM_SET_MSRS: {
		struct kvm_msrs *m = arg;
		take(m, sizeof(*m));
		if (m->nmsrs > 4096) {
			errno = E2BIG;
			return -1;
		}
		take(m->entries, m->nmsrs * sizeof(m->entries[0]));
		if (req == KVM_GET_MSRS)
			for (unsigned i = 0; i < m->nmsrs; i++)
				m->entries[i].data = 0;
		return (int)m->nmsrs;
	}
	case KVM_SET_XSAVE:
		take(arg, FAKE_XSAVE);
		return 0;
	case KVM_GET_XSAVE: case KVM_GET_XSAVE2:
		give(arg, FAKE_XSAVE);
		return 0;
	case KVM_SET_NESTED_STATE: {
		/* KVM reads the header, then up to `size` bytes (VMCS12 and its
		 * shadow) from the same buffer. */
		struct kvm_nested_state *ns = arg;
		take(ns, sizeof(*ns));
		if (ns->size < sizeof(*ns) || ns->size > FAKE_NESTED) {
			errno = EINVAL;
			return -1;
		}
		take(ns, ns->size);
		return 0;
	}
	case KVM_GET_NESTED_STATE: {
		struct kvm_nested_state *ns = arg;
		take(ns, sizeof(*ns));
		if (ns->size < sizeof(*ns)) {
			errno = E2BIG;
			return -1;
		}
		give(ns, sizeof(*ns));
		ns->size = sizeof(*ns);
		return 0;
	}
	case KVM_GET_TSC_KHZ:
		return 2000000;
	case KVM_SET_TSC_KHZ:
		return 0;
	case KVM_RUN:
		abort();   /* nothing runs here */
	}
	return NOT_VCPU;
}

static int fake_ioctl(int fd, unsigned long req, void *arg)
{
	int r = vcpu_ioctl(fd, req, arg);
	if (r != NOT_VCPU)
		return r;
	switch (req) {
	case KVM_GET_API_VERSION: return KVM_API_VERSION;
	case KVM_CHECK_EXTENSION: return check_extension((unsigned long)arg);
	case KVM_GET_VCPU_MMAP_SIZE: return RUN_SIZE;
	case KVM_CREATE_VM: case KVM_CREATE_VCPU: return fake_fd();
	case KVM_GET_SUPPORTED_CPUID: return supported_cpuid(arg);
	case KVM_GET_MSR_INDEX_LIST: {
		struct kvm_msr_list *l = arg;
		take(l, sizeof(*l));
		if (l->nmsrs < NMSR) {
			l->nmsrs = NMSR;
			errno = E2BIG;
			return -1;
		}
		l->nmsrs = NMSR;
		memcpy(l->indices, msr_index, sizeof(msr_index));
		return 0;
	}
	case KVM_GET_MSR_FEATURE_INDEX_LIST: case KVM_X86_GET_MCE_CAP_SUPPORTED: case KVM_ENABLE_CAP:
	case KVM_HAS_DEVICE_ATTR:
		errno = EINVAL;
		return -1;
	case KVM_SET_GSI_ROUTING: {
		struct kvm_irq_routing *rt = arg;
		take(rt, sizeof(*rt));
		if (rt->nr > 4096) {
			errno = EINVAL;
			return -1;
		}
		take(rt->entries, rt->nr * sizeof(rt->entries[0]));
		return 0;
	}
	case KVM_SET_TSS_ADDR: case KVM_CREATE_IRQCHIP: case KVM_IRQ_LINE_STATUS:
		return 0;
	}
	/* Fixed-size arguments: in, out or both, as the request number says. */
	if (_IOC_TYPE(req) != KVMIO) {
		errno = ENOTTY;
		return -1;
	}
	size_t n = _IOC_SIZE(req);
	if (n && (_IOC_DIR(req) & _IOC_WRITE))
		take(arg, n);
	if (n && (_IOC_DIR(req) & _IOC_READ))
		give(arg, n);
	return 0;
}

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (fd >= 0 && fd < MAX_FDS && fake[fd])
		return fake_ioctl(fd, req, arg);
	return __real_ioctl(fd, req, arg);
}

/* ---- the VM -------------------------------------------------------------------------- */

#define MAX_RAM (64ull << 20)
#define MAX_CPUS 4

static struct vm_config cmdline;
static struct host_files files;

/* The stream's machine, within what a fuzzer can afford. */
static int create(struct vm_restore *rs)
{
	if (rs->cfg.ncpus > MAX_CPUS || rs->cfg.mem_size > MAX_RAM)
		return EXIT_USAGE;
	rs->cfg.files = &files;
	return vm_restore_create(rs);
}

static int synced(struct vm_restore *rs)
{
	(void)rs;
	return 0;
}

static char disk[] = "/tmp/ember-fuzz-stream-XXXXXX";

static void remove_disk(void)
{
	unlink(disk);
}

static void setup(void)
{
	log_level = LOG_ERROR;
	int fd = mkstemp(disk);
	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		abort();
	__real_close(fd);
	atexit(remove_disk);
	files.kvm_fd = fake_fd();
	files.backend = "kvm";
	cmdline.files = &files;
	snprintf(cmdline.disks[0].path, sizeof(cmdline.disks[0].path), "%s", disk);
	cmdline.ndisks = 1;
	cmdline.rng = true;
	cmdline.result_fd = -1;
}

static void destroy(struct vm_restore *rs)
{
	if (rs->vm)
		vm_destroy(rs->vm);
}

/* The checksums that a mutation broke, made right again: a stream whose
 * CRCs fail never reaches a loader (fuzz_state covers the checking). The
 * layout is state.h's: a 16-byte header, then 48-byte section headers
 * (payload length at 32, payload CRC at 40, header CRC at 44). */
static void fix_crcs(uint8_t *p, size_t size)
{
	size_t pos = 16;
	while (pos + 48 <= size) {
		uint64_t len;
		memcpy(&len, p + pos + 32, 8);
		if (len <= size - pos - 48) {
			uint32_t c = state_crc32(0, p + pos + 48, (size_t)len);
			memcpy(p + pos + 40, &c, 4);
		}
		uint32_t h = state_crc32(0, p + pos, 44);
		memcpy(p + pos + 44, &h, 4);
		if (len > size - pos - 48)
			break;
		pos += 48 + (size_t)len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm vm;
	struct vm_restore rs = { .create = create, .target = &vm, .cmdline = &cmdline, .sync = synced };
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	fix_crcs(copy, size);
	struct state_buf b = { .data = copy, .len = size };
	char err[512];
	memset(&vm, 0, sizeof(vm));
	if (vm_restore_load(&rs, state_buf_source(&b), false, err, sizeof(err)) == 0) {
		/* Whatever loaded must save again. */
		struct state_buf out = { 0 };
		struct state_writer w;
		if (!state_writer_init(&w, state_buf_sink(&out)))
			vm_save(rs.vm, &w);
		state_writer_destroy(&w);
		state_buf_free(&out);
	}
	destroy(&rs);
	free(copy);
	return 0;
}

/* ---- seeds ------------------------------------------------------------------------------ */

static void write_seed(const char *dir, const char *name, const struct state_buf *b)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(b->data, 1, b->len, f) != b->len)
		abort();
	fclose(f);
}

/* A VM of ncpus and 2 MiB, saved whole ("ram") or the way a migration
 * sends it ("pages" of a pattern, "sync", the state). */
static void make_seed(const char *dir, const char *name, unsigned ncpus, bool migration)
{
	struct vm_config cfg = cmdline;
	cfg.ncpus = ncpus;
	cfg.mem_size = 2 << 20;
	cfg.cpu = "host";
	cfg.from_state = true;
	struct vm vm;
	if (vm_create(&vm, &cfg) || vm_pit_ready(&vm))
		abort();
	/* A snapshot seed keeps RAM zero: one flag instead of 2 MiB. */
	for (unsigned i = 0; i < 8 && migration; i++)
		memset(vm.mem.host + i * 8192, 0x11 * (i + 1), 4096);
	struct state_buf out = { 0 };
	struct state_writer w;
	int r = state_writer_init(&w, state_buf_sink(&out));
	if (!migration) {
		r = r ? r : vm_save(&vm, &w);
	} else {
		uint64_t pages[16];
		static uint8_t buf[VMSAVE_PAGES_MAX * 4096];
		uint64_t zero = 0;
		for (unsigned i = 0; i < 16; i++)
			pages[i] = i;
		r = r ? r : vm_save_shape(&vm, &w);
		r = r ? r : vm_save_pages(&vm, &w, pages, 16, buf, &zero);
		r = r ? r : vm_save_sync(&w);
		r = r ? r : vm_save_pages(&vm, &w, pages + 4, 2, buf, &zero);
		r = r ? r : vm_save_state(&vm, &w);
		r = r ? r : state_writer_finish(&w);
	}
	if (r)
		abort();
	write_seed(dir, name, &out);
	state_writer_destroy(&w);
	state_buf_free(&out);
	vm_destroy(&vm);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setup();
	const char *dir = getenv("FUZZ_STREAM_SEEDS");
	if (dir) {
		make_seed(dir, "snapshot-1cpu", 1, false);
		make_seed(dir, "migration-2cpus", 2, true);
		exit(0);
	}
	return 0;
}
