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
#include <pthread.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../unit/cpu_fixture.h"
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
static struct kvm_cpuid2 *given_cpuid[MAX_FDS];   /* per vCPU: what KVM_SET_CPUID2 gave */
static volatile uint8_t sink;

/* What a KVM object was given, so that a GET after its SET shows it (the
 * loaders read the state back and compare): one slot per SET/GET pair of
 * fixed size, the MSRs by index, the XSAVE area, the nested state. */
static const struct { unsigned long set, get; } pairs[] = {
	{ KVM_SET_REGS, KVM_GET_REGS }, { KVM_SET_SREGS, KVM_GET_SREGS }, { KVM_SET_SREGS2, KVM_GET_SREGS2 },
	{ KVM_SET_FPU, KVM_GET_FPU }, { KVM_SET_XCRS, KVM_GET_XCRS }, { KVM_SET_LAPIC, KVM_GET_LAPIC },
	{ KVM_SET_MP_STATE, KVM_GET_MP_STATE }, { KVM_SET_DEBUGREGS, KVM_GET_DEBUGREGS },
	{ KVM_SET_VCPU_EVENTS, KVM_GET_VCPU_EVENTS }, { KVM_SET_CLOCK, KVM_GET_CLOCK },
};
#define NPAIRS (sizeof(pairs) / sizeof(pairs[0]))
#define MAX_FAKE_MSRS 512
struct kept {
	void *pair[NPAIRS];
	struct kvm_msr_entry msrs[MAX_FAKE_MSRS];
	unsigned nmsrs;
	uint8_t *xsave, *nested;
};
static struct kept *kept[MAX_FDS];

static struct kept *kept_of(int fd)
{
	if (!kept[fd] && !(kept[fd] = calloc(1, sizeof(struct kept))))
		abort();
	return kept[fd];
}

static void kept_free(int fd)
{
	struct kept *k = kept[fd];
	if (!k)
		return;
	for (size_t i = 0; i < NPAIRS; i++)
		free(k->pair[i]);
	free(k->xsave);
	free(k->nested);
	free(k);
	kept[fd] = NULL;
}

/* A fixed-size SET keeps its bytes; the GET of the pair gives them back
 * (zeros before any SET). 1 when req is one of the pairs. */
static int kept_pair(int fd, unsigned long req, void *arg)
{
	for (size_t i = 0; i < NPAIRS; i++) {
		size_t n = _IOC_SIZE(pairs[i].get);
		void **slot = &kept_of(fd)->pair[i];
		if (req == pairs[i].set) {
			if (!*slot && !(*slot = malloc(n)))
				abort();
			memcpy(*slot, arg, n);
			return 1;
		}
		if (req == pairs[i].get) {
			if (*slot)
				memcpy(arg, *slot, n);
			else
				memset(arg, 0, n);
			/* The clock runs: a GET shows what was set plus a tick. */
			if (req == KVM_GET_CLOCK)
				((struct kvm_clock_data *)arg)->clock += 1000;
			return 1;
		}
	}
	return 0;
}

static uint64_t *kept_msr(int fd, uint32_t index)
{
	struct kept *k = kept_of(fd);
	for (unsigned i = 0; i < k->nmsrs; i++)
		if (k->msrs[i].index == index)
			return (uint64_t *)&k->msrs[i].data;
	if (k->nmsrs == MAX_FAKE_MSRS)
		return NULL;
	k->msrs[k->nmsrs] = (struct kvm_msr_entry){ .index = index };
	return (uint64_t *)&k->msrs[k->nmsrs++].data;
}

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
		free(given_cpuid[fd]);
		given_cpuid[fd] = NULL;
		kept_free(fd);
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

/* KVM_GET_SUPPORTED_CPUID: a recorded host's (tests/unit/cpu_fixture.h,
 * the kvm_pvm host), not this machine's: the seeds must load on any CPU. */
static int supported_cpuid(struct kvm_cpuid2 *c)
{
	(void)fx_rich;
	struct kvm_cpuid2 *host = fx_pvm_host();
	if (!host)
		abort();
	take(c, sizeof(*c));
	unsigned n = host->nent;
	if (c->nent < n) {
		c->nent = n;
		free(host);
		errno = E2BIG;
		return -1;
	}
	c->nent = n;
	memcpy(c->entries, host->entries, n * sizeof(c->entries[0]));
	free(host);
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
		free(given_cpuid[fd]);
		given_cpuid[fd] = copy;
		return 0;
	}
	case KVM_GET_CPUID2: {
		/* Linux before 6.5 leaves nent alone on success (odd
		 * descriptors here), later ones set it (even). */
		struct kvm_cpuid2 *c = arg, *have = given_cpuid[fd];
		take(c, sizeof(*c));
		unsigned n = have ? have->nent : 0;
		if (c->nent < n) {
			errno = E2BIG;
			return -1;
		}
		if (!(fd & 1))
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
		for (unsigned i = 0; i < m->nmsrs; i++) {
			uint64_t *d = kept_msr(fd, m->entries[i].index);
			if (!d)
				return (int)i;
			if (req == KVM_GET_MSRS)
				m->entries[i].data = *d;
			else
				*d = m->entries[i].data;
		}
		return (int)m->nmsrs;
	}
	case KVM_SET_XSAVE: {
		take(arg, FAKE_XSAVE);
		struct kept *k = kept_of(fd);
		if (!k->xsave && !(k->xsave = malloc(FAKE_XSAVE)))
			abort();
		memcpy(k->xsave, arg, FAKE_XSAVE);
		return 0;
	}
	case KVM_GET_XSAVE: case KVM_GET_XSAVE2:
		give(arg, FAKE_XSAVE);
		if (kept_of(fd)->xsave)
			memcpy(arg, kept[fd]->xsave, FAKE_XSAVE);
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
		struct kept *k = kept_of(fd);
		free(k->nested);
		if (!(k->nested = malloc(ns->size)))
			abort();
		memcpy(k->nested, ns, ns->size);
		return 0;
	}
	case KVM_GET_NESTED_STATE: {
		struct kvm_nested_state *ns = arg, *have = (struct kvm_nested_state *)kept_of(fd)->nested;
		take(ns, sizeof(*ns));
		uint32_t n = have ? have->size : sizeof(*ns);
		if (ns->size < n) {
			ns->size = n;
			errno = E2BIG;
			return -1;
		}
		give(ns, n);
		if (have)
			memcpy(ns, have, n);
		ns->size = n;
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
	if (kept_pair(fd, req, arg))
		return 0;
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

/* ---- guest RAM kept across inputs --------------------------------------------------- */

/* Creating and tearing down a memfd mapping between guard pages (and the
 * kernel freeing its pages) was a fifth of every input's time. The last
 * RAM a VM gave back is kept, emptied (a hole punched over all of it:
 * zeros, and no data for SEEK_DATA, exactly as a new memfd) and handed to
 * the next VM of that size. Its memfd is parked at a high descriptor; the
 * VM gets a dup in the lowest free one, the number a new memfd would have
 * had, so descriptor numbers (the fake KVM looks at their parity) do not
 * depend on what the input before left. */
int __real_mem_create(struct guest_mem *m, uint64_t size);
void __real_mem_destroy(struct guest_mem *m);
int __wrap_mem_create(struct guest_mem *m, uint64_t size);
void __wrap_mem_destroy(struct guest_mem *m);

#define PARKED_FD 1000
static struct guest_mem parked;     /* as mem_create left it; fd PARKED_FD */
static bool parked_in_use;

int __wrap_mem_create(struct guest_mem *m, uint64_t size)
{
	if (!parked.host || parked_in_use || parked.size != size)
		return __real_mem_create(m, size);
	*m = parked;
	if ((m->fd = fcntl(PARKED_FD, F_DUPFD_CLOEXEC, 0)) < 0)
		abort();
	parked_in_use = true;
	return 0;
}

static void empty(const struct guest_mem *m)
{
	if (fallocate(PARKED_FD, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)m->size) < 0)
		abort();
}

void __wrap_mem_destroy(struct guest_mem *m)
{
	if (!m->host) {
		__real_mem_destroy(m);
		return;
	}
	if (m->host == parked.host) {
		parked_in_use = false;
	} else {
		/* A new size: it replaces what was parked. */
		if (parked.host && !parked_in_use) {
			parked.fd = PARKED_FD;
			__real_mem_destroy(&parked);
		}
		if (!parked_in_use) {
			parked = *m;
			parked.thp = false;
			parked.dirty_log = NULL;
			if (dup3(m->fd, PARKED_FD, O_CLOEXEC) < 0)
				abort();
			parked.fd = PARKED_FD;
		} else {
			__real_mem_destroy(m);
			return;
		}
	}
	empty(&parked);
	__real_close(m->fd);
	m->host = m->reserved = NULL;
	m->fd = -1;
}

/* ---- the VM -------------------------------------------------------------------------- */

static struct vm target;             /* what each input's stream builds */

/* A restored VM creates its in-kernel PIT on a thread of its own (vm.c
 * pit_start, with the VM as the argument), joined once the state is
 * loaded. Here that thread runs to its end at once, inside
 * pthread_create: one of the orders it may run in, and no thread made
 * and joined per input (a tenth of the time). Every other thread is
 * real. */
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __real_pthread_join(pthread_t t, void **ret);
int __wrap_pthread_join(pthread_t t, void **ret);
#define RAN_INLINE ((pthread_t)-1)

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
	if (arg != &target)
		return __real_pthread_create(t, a, fn, arg);
	fn(arg);
	*t = RAN_INLINE;
	return 0;
}

int __wrap_pthread_join(pthread_t t, void **ret)
{
	if (t != RAN_INLINE)
		return __real_pthread_join(t, ret);
	if (ret)
		*ret = NULL;
	return 0;
}

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
	struct vm_restore rs = { .create = create, .target = &target, .cmdline = &cmdline, .sync = synced };
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	fix_crcs(copy, size);
	struct state_buf b = { .data = copy, .len = size };
	char err[512];
	memset(&target, 0, sizeof(target));
	int r = vm_restore_load(&rs, state_buf_source(&b), false, err, sizeof(err));
	/* FUZZ_STREAM_VERBOSE=1: what each input came to (are the seeds
	 * still loaded whole?). */
	if (getenv("FUZZ_STREAM_VERBOSE"))
		fprintf(stderr, "fuzz_stream: %s\n", r ? err : "loaded");
	if (r == 0) {
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
