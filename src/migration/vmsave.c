/* vm_save / vm_load: the sections of a whole VM, in restore order. */
#include "migration/vmsave.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/cpufeat.h"
#include "arch/x86/cpumodel.h"
#include "arch/x86/guestcpu.h"
#include "arch/x86/vcpu_state.h"
#include "arch/x86/vm_state.h"
#include "devices/virtio/balloon.h"
#include "log.h"
#include "migration/devstate.h"
#include "vcpu.h"
#include "vm.h"

/* "vm" v1: ncpus..spec; v2 adds the RAM layout and the machine options;
 * v3 the balloon's options (the VM is created from this section, before
 * the balloon's own section is read); v4 the guest CPU (the model's
 * CPUID), checked here before any RAM comes. */
enum { T_NCPUS = 1, T_MEM_SIZE, T_PMU, T_MCG_CAP, T_SPEC, T_LAYOUT, T_OPTIONS, T_KERNEL, T_CMDLINE,
       T_BALLOON, T_BALLOON_OPTS, T_BALLOON_SIZE, T_BALLOON_STATS, T_GUEST_CPUID };
enum { T_GPA = 1, T_LEN, T_DATA, T_ZERO };                    /* "ram" v1 */
enum { T_PAGES = 1, T_PAGE_DATA };                            /* "pages" v1 */
#define VM_SECTION_VERSION 4
#define PAGE_ZERO_FLAG (1ull << 63)

/* Device options in T_OPTIONS. */
enum { OPT_DEBUG_EXIT = 1, OPT_FW_CFG = 2, OPT_PC_TESTDEV = 4, OPT_RTC = 8, OPT_PIT_DISCARD = 16 };

static bool all_zero(const uint8_t *p, size_t len)
{
	/* Word-wise: the common non-zero page fails on its first word. */
	const uint64_t *w = (const uint64_t *)p;
	for (size_t i = 0; i < len / 8; i++)
		if (w[i])
			return false;
	return true;
}

static int save_ram(struct vm *vm, struct state_writer *w)
{
	uint32_t chunk = 0;
	for (int i = 0; i < vm->mem.nregions; i++) {
		const struct mem_region *reg = &vm->mem.regions[i];
		for (uint64_t off = 0; off < reg->size; off += VMSAVE_RAM_CHUNK) {
			uint64_t len = reg->size - off < VMSAVE_RAM_CHUNK ? reg->size - off : VMSAVE_RAM_CHUNK;
			const uint8_t *p = mem_ptr(&vm->mem, reg->gpa + off, len);
			if (!p)
				return -EFAULT;
			/* A hole reads as zeros; reading it would allocate it. Not
			 * while a lazy restore runs: there a hole is RAM not yet
			 * loaded, which reading it through the mapping loads. */
			uint64_t at = reg->offset + off;
			bool zero = (!vm->lazy && mem_next_data(&vm->mem, at, at + len) == at + len) || all_zero(p, len);
			int r = state_begin_section(w, "ram", chunk++, 1);
			if (r)
				return r;
			state_put_u64(w, T_GPA, reg->gpa + off);
			state_put_u64(w, T_LEN, len);
			if (zero)
				state_put_u8(w, T_ZERO, 1);
			else
				state_put_blob(w, T_DATA, p, len);
			if ((r = state_end_section(w)))
				return r;
		}
	}
	return 0;
}

int vm_save_shape(struct vm *vm, struct state_writer *w)
{
	const struct vm_config *cfg = vm->cfg;
	int r = state_begin_section(w, "vm", 0, VM_SECTION_VERSION);
	if (r)
		return r;
	state_put_u32(w, T_NCPUS, vm->ncpus);
	state_put_u64(w, T_MEM_SIZE, vm->mem.size);
	state_put_u8(w, T_PMU, vm->cpu.model.pmu);
	state_put_u64(w, T_MCG_CAP, vm->cpu.mcg_cap);
	state_put_blob(w, T_SPEC, vm->cpu.model.spec, strlen(vm->cpu.model.spec));
	uint64_t layout[MEM_MAX_REGIONS * 3];
	for (int i = 0; i < vm->mem.nregions; i++) {
		layout[i * 3] = vm->mem.regions[i].gpa;
		layout[i * 3 + 1] = vm->mem.regions[i].size;
		layout[i * 3 + 2] = vm->mem.regions[i].offset;
	}
	state_put_blob(w, T_LAYOUT, layout, (size_t)vm->mem.nregions * 3 * 8);
	uint32_t opts = (cfg->debug_exit ? OPT_DEBUG_EXIT : 0) | (cfg->fw_cfg ? OPT_FW_CFG : 0) |
			(cfg->pc_testdev ? OPT_PC_TESTDEV : 0) | (cfg->rtc ? OPT_RTC : 0) |
			(cfg->pit_discard ? OPT_PIT_DISCARD : 0);
	state_put_u32(w, T_OPTIONS, opts);
	const char *k = cfg->kernel ? cfg->kernel : "";
	state_put_blob(w, T_KERNEL, k, strlen(k));
	state_put_blob(w, T_CMDLINE, cfg->cmdline ? cfg->cmdline : "", cfg->cmdline ? strlen(cfg->cmdline) : 0);
	const struct balloon_config *b = &cfg->balloon;
	state_put_u8(w, T_BALLOON, b->enabled);
	state_put_u32(w, T_BALLOON_OPTS, !b->enabled ? 0 :
		      (b->deflate_on_oom ? BALLOON_OPT_DEFLATE_ON_OOM : 0) | (b->reporting ? BALLOON_OPT_REPORTING : 0) |
		      (b->reporting && b->reporting_free ? BALLOON_OPT_FREE : 0));
	state_put_u64(w, T_BALLOON_SIZE, b->enabled ? b->size : 0);
	state_put_u32(w, T_BALLOON_STATS, b->enabled ? b->stats_interval : 0);
	/* The model's CPUID, not a vCPU's: a running vCPU holds its mutex in
	 * KVM_RUN (this section goes before the pause). */
	const struct kvm_cpuid2 *c = vm->cpu.model.cpuid;
	state_put_blob(w, T_GUEST_CPUID, c->entries, c->nent * sizeof(c->entries[0]));
	return state_end_section(w);
}

int vm_save_state(struct vm *vm, struct state_writer *w)
{
	int r = vm_arch_save_devices(vm, w);
	if (!r)
		r = devstate_save(&vm->devstate, w);
	for (unsigned i = 0; i < vm->ncpus && !r; i++)
		r = vcpu_state_save(vm->vcpus[i], w);
	if (!r)
		r = vm_arch_save_clock(vm, w);
	return r;
}

int vm_save(struct vm *vm, struct state_writer *w)
{
	int r = vm_save_shape(vm, w);
	if (!r)
		r = save_ram(vm, w);
	if (!r)
		r = vm_save_state(vm, w);
	return r ? r : state_writer_finish(w);
}

int vm_save_pages(struct vm *vm, struct state_writer *w, const uint64_t *pages, unsigned n,
		  uint8_t *data, uint64_t *zero_pages)
{
	uint64_t idx[VMSAVE_PAGES_MAX];
	if (n > VMSAVE_PAGES_MAX)
		return -EINVAL;
	unsigned nd = 0;
	for (unsigned i = 0; i < n; i++) {
		if (pages[i] & VMSAVE_PAGE_HOLE) {
			idx[i] = (pages[i] & ~VMSAVE_PAGE_HOLE) | PAGE_ZERO_FLAG;
			(*zero_pages)++;
			continue;
		}
		const uint8_t *p = vm->mem.host + pages[i] * 4096;
		/* Copy first, test the copy: the guest may be writing the page. */
		memcpy(data + (size_t)nd * 4096, p, 4096);
		if (all_zero(data + (size_t)nd * 4096, 4096)) {
			idx[i] = pages[i] | PAGE_ZERO_FLAG;
			(*zero_pages)++;
		} else {
			idx[i] = pages[i];
			nd++;
		}
	}
	int r = state_begin_section(w, "pages", 0, 1);
	if (r)
		return r;
	state_put_blob(w, T_PAGES, idx, (size_t)n * 8);
	state_put_blob(w, T_PAGE_DATA, data, (size_t)nd * 4096);
	return state_end_section(w);
}

int vm_save_sync(struct state_writer *w)
{
	int r = state_begin_section(w, "sync", 0, 1);
	return r ? r : state_end_section(w);
}

/* ---- loading ----------------------------------------------------------------- */

static int str_field(struct state_reader *r, uint16_t tag, char *buf, size_t size)
{
	const void *p;
	size_t len;
	int e = state_get_blob_ref(r, tag, &p, &len);
	if (e)
		return e;
	if (len >= size || memchr(p, 0, len))
		return state_fail(r, "field %u: not a string of at most %zu bytes", tag, size - 1);
	memcpy(buf, p, len);
	buf[len] = '\0';
	return 0;
}

/* The balloon's options from a v3 "vm" section (all zero before v3: no
 * balloon), checked. */
static int get_balloon(struct state_reader *r, struct balloon_config *b)
{
	uint8_t present = 0;
	uint32_t flags = 0, interval = 0;
	uint64_t size = 0;
	int e;
	memset(b, 0, sizeof(*b));
	if (r->version < 3)
		return 0;
	if ((e = state_get_u8(r, T_BALLOON, &present)) || (e = state_get_u32(r, T_BALLOON_OPTS, &flags)) ||
	    (e = state_get_u64(r, T_BALLOON_SIZE, &size)) || (e = state_get_u32(r, T_BALLOON_STATS, &interval)))
		return e;
	if (present > 1 || flags & ~(uint32_t)BALLOON_OPT_ALL || interval > 3600 || size % 4096 ||
	    ((flags & BALLOON_OPT_FREE) && !(flags & BALLOON_OPT_REPORTING)) || (!present && (flags || size || interval)))
		return state_fail(r, "balloon options out of range (present %u, flags %#x, size %llu, stats-interval %u)",
				  present, flags, (unsigned long long)size, interval);
	b->enabled = present;
	b->size = size;
	b->deflate_on_oom = flags & BALLOON_OPT_DEFLATE_ON_OOM;
	b->reporting = flags & BALLOON_OPT_REPORTING;
	b->reporting_free = flags & BALLOON_OPT_FREE;
	b->stats_interval = interval;
	return 0;
}

/* The balloon is the stream's: the guest saw it. A --balloon on this
 * command line must describe the same device (size, deflate-on-oom, free
 * page reporting on or off: what the driver read and negotiated), as a
 * --disk must have the saved size; its discard mode and statistics
 * interval are this host's to choose, as a disk's path is. Without
 * --balloon the stream's options are taken whole. */
static int merge_balloon(struct vm_restore *rs, struct state_reader *r, const struct balloon_config *saved)
{
	const struct balloon_config *cl = rs->cmdline ? &rs->cmdline->balloon : NULL;
	char a[160], b[160];
	if (!cl || !cl->enabled) {
		rs->cfg.balloon = *saved;
		return 0;
	}
	balloon_config_str(saved, a, sizeof(a));
	balloon_config_str(cl, b, sizeof(b));
	if (!saved->enabled)
		return state_fail(r, "--balloon %s: the VM in the stream has no balloon (leave --balloon out)", b);
	if (cl->size != saved->size || cl->deflate_on_oom != saved->deflate_on_oom || cl->reporting != saved->reporting)
		return state_fail(r, "--balloon %s: the VM's balloon is %s (the guest saw its size and features): "
				  "give those or leave --balloon out", b, a);
	rs->cfg.balloon = *cl;
	return 0;
}

/* Fill rs->cfg from the section: the machine a --restore/--incoming VM is. */
static int shape_to_config(struct vm_restore *rs, struct state_reader *r, uint32_t ncpus, uint64_t mem,
			   uint32_t opts, const struct balloon_config *balloon)
{
	struct vm_config *cfg = &rs->cfg;
	char err[256];
	if (ncpus < 1 || ncpus > 4096)
		return state_fail(r, "%u vCPUs", ncpus);
	if (mem < (2ull << 20) || mem % 4096 || mem > (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE))
		return state_fail(r, "%llu bytes of RAM: not possible on this host", (unsigned long long)mem);
	if (cpumodel_check_spec(rs->spec, err, sizeof(err)))
		return state_fail(r, "CPU model incompatible with this Ember: %s", err);
	if (opts & ~(uint32_t)(OPT_DEBUG_EXIT | OPT_FW_CFG | OPT_PC_TESTDEV | OPT_RTC | OPT_PIT_DISCARD))
		return state_fail(r, "unknown machine options %#x", opts);
	if (balloon->size > mem)
		return state_fail(r, "balloon of %llu MiB in %llu MiB of RAM", (unsigned long long)(balloon->size >> 20),
				  (unsigned long long)(mem >> 20));
	int e = merge_balloon(rs, r, balloon);
	if (e)
		return e;
	cfg->ncpus = ncpus;
	cfg->mem_size = mem;
	/* --cpu on this side: the VM is made of that model, and load_vm
	 * refuses a stream of another. */
	cfg->cpu = rs->cmdline && rs->cmdline->expect_cpu ? rs->cmdline->expect_cpu : rs->spec;
	cfg->kernel = rs->kernel;
	cfg->cmdline = rs->cmdline_str;
	cfg->debug_exit = opts & OPT_DEBUG_EXIT;
	cfg->fw_cfg = opts & OPT_FW_CFG;
	cfg->pc_testdev = opts & OPT_PC_TESTDEV;
	cfg->rtc = opts & OPT_RTC;
	cfg->pit_discard = opts & OPT_PIT_DISCARD;
	return 0;
}

/* The guest CPU of the stream, before any RAM: a destination of another
 * CPU model (--cpu there) refuses it, and this host's KVM must give it
 * exactly (each vCPU's section is checked the same way, at the end). */
static int check_guest_cpu(struct vm_restore *rs, struct state_reader *r, const void *p, size_t len)
{
	struct vm *vm = rs->vm;
	size_t esz = sizeof(struct kvm_cpuid_entry2);
	if (!len || len % esz || len / esz > 4096)
		return state_fail(r, "guest CPUID of %zu bytes", len);
	struct kvm_cpuid2 *c = cpuid_from_entries(p, len);
	if (!c)
		return -ENOMEM;
	char err[512];
	int e = 0;
	const char *expect = rs->cmdline ? rs->cmdline->expect_cpu : NULL;
	if (cpuid_find_duplicate(c) >= 0)
		e = state_fail(r, "the guest CPUID lists a leaf twice");
	else if (expect && cpumodel_diff(c, vm->cpu.model.cpuid, err, sizeof(err)))
		e = state_fail(r, "the VM runs --cpu %s, another CPU model than --cpu %s here (%s)", rs->spec, expect, err);
	else if (guest_cpu_check_cpuid(&vm->cpu, -1, c, err, sizeof(err)))
		e = state_fail(r, "the VM's CPU (--cpu %s) cannot be given here: %s", rs->spec, err);
	/* The VM's model is the saved one, whatever this host would build for
	 * the spec: the MSR list follows it, and a save of this VM sends it. */
	else if (guest_cpu_replace_cpuid(&vm->cpu, c, err, sizeof(err)))
		e = state_fail(r, "the VM's CPU (--cpu %s): %s", rs->spec, err);
	else
		vm->cpu.model_from_state = true;
	free(c);
	return e;
}

static int load_vm(void *opaque, struct state_reader *r)
{
	struct vm_restore *rs = opaque;
	uint32_t ncpus, opts = 0;
	uint64_t mem, mcg, layout[MEM_MAX_REGIONS * 3];
	size_t layout_len = 0;
	uint8_t pmu;
	struct balloon_config balloon;
	int e;
	if (rs->vm_seen)
		return state_fail(r, "a second vm section");
	if ((e = state_get_u32(r, T_NCPUS, &ncpus)) || (e = state_get_u64(r, T_MEM_SIZE, &mem)) ||
	    (e = state_get_u8(r, T_PMU, &pmu)) || (e = state_get_u64(r, T_MCG_CAP, &mcg)) ||
	    (e = str_field(r, T_SPEC, rs->spec, sizeof(rs->spec))))
		return e;
	if (r->version >= 2) {
		const void *p;
		if ((e = state_get_blob_ref(r, T_LAYOUT, &p, &layout_len)))
			return e;
		if (layout_len == 0 || layout_len % 24 || layout_len > sizeof(layout))
			return state_fail(r, "RAM layout of %zu bytes", layout_len);
		memcpy(layout, p, layout_len);
		if ((e = state_get_u32(r, T_OPTIONS, &opts)) ||
		    (e = str_field(r, T_KERNEL, rs->kernel, sizeof(rs->kernel))) ||
		    (e = str_field(r, T_CMDLINE, rs->cmdline_str, sizeof(rs->cmdline_str))))
			return e;
	}
	if ((e = get_balloon(r, &balloon)))
		return e;
	const void *guest_cpuid = NULL;
	size_t guest_cpuid_len = 0;
	if (r->version >= 4 && (e = state_get_blob_ref(r, T_GUEST_CPUID, &guest_cpuid, &guest_cpuid_len)))
		return e;
	if (!rs->vm) {
		if (r->version < 2)
			return state_fail(r, "version 1 does not describe the machine");
		if ((e = shape_to_config(rs, r, ncpus, mem, opts, &balloon)))
			return e;
		if (rs->create(rs)) {
			state_fail(r, "the VM could not be created");
			return -ECANCELED;
		}
	}
	struct vm *vm = rs->vm;
	if (guest_cpuid && (e = check_guest_cpu(rs, r, guest_cpuid, guest_cpuid_len)))
		return e;
	if (!guest_cpuid && rs->cmdline && rs->cmdline->expect_cpu && strcmp(rs->cmdline->expect_cpu, rs->spec))
		return state_fail(r, "the VM runs --cpu %s (saved by an older Ember: its CPU is not in the vm section), "
				  "not --cpu %s", rs->spec, rs->cmdline->expect_cpu);
	if (ncpus != vm->ncpus)
		return state_fail(r, "saved with %u vCPUs, this VM has %u (use --cpus %u)", ncpus, vm->ncpus, ncpus);
	if (mem != vm->mem.size)
		return state_fail(r, "saved with %llu MiB of RAM, this VM has %llu MiB",
				  (unsigned long long)(mem >> 20), (unsigned long long)(vm->mem.size >> 20));
	if (!!pmu != vm->cpu.model.pmu || mcg != vm->cpu.mcg_cap)
		return state_fail(r, "saved with --cpu %s (PMU %s, MCG_CAP %#llx); this VM's CPU differs "
				  "(PMU %s, MCG_CAP %#llx): incompatible CPU model", rs->spec, pmu ? "on" : "off",
				  (unsigned long long)mcg, vm->cpu.model.pmu ? "on" : "off",
				  (unsigned long long)vm->cpu.mcg_cap);
	if (layout_len) {
		bool same = layout_len == (size_t)vm->mem.nregions * 24;
		for (int i = 0; same && i < vm->mem.nregions; i++)
			same = layout[i * 3] == vm->mem.regions[i].gpa && layout[i * 3 + 1] == vm->mem.regions[i].size &&
			       layout[i * 3 + 2] == vm->mem.regions[i].offset;
		if (!same)
			return state_fail(r, "the guest RAM layout differs from this VM's");
	}
	devstate_reset_loaded(&vm->devstate);
	rs->vm_seen = true;
	return 0;
}

static int load_ram(void *opaque, struct state_reader *r)
{
	struct vm_restore *rs = opaque;
	uint64_t gpa, len;
	int e;
	if (!rs->vm_seen || rs->irqchip)
		return state_fail(r, "out of order");
	if (r->instance != rs->ram_chunks)
		return state_fail(r, "chunk %u where %u was expected", r->instance, rs->ram_chunks);
	if ((e = state_get_u64(r, T_GPA, &gpa)) || (e = state_get_u64(r, T_LEN, &len)))
		return e;
	if (len == 0 || len > VMSAVE_RAM_CHUNK)
		return state_fail(r, "chunk of %llu bytes", (unsigned long long)len);
	uint8_t *p = mem_ptr(&rs->vm->mem, gpa, len);
	if (!p)
		return state_fail(r, "%#llx+%#llx is not guest RAM", (unsigned long long)gpa,
				  (unsigned long long)len);
	if (state_peek_tag(r) == T_ZERO) {
		uint8_t z;
		if ((e = state_get_u8(r, T_ZERO, &z)))
			return e;
		/* Where the memfd has a hole the RAM is zero already: clearing it
		 * would allocate pages to hold zeros. */
		uint64_t at = (uint64_t)(p - rs->vm->mem.host);
		if (mem_next_data(&rs->vm->mem, at, at + len) < at + len)
			memset(p, 0, len);
	} else if ((e = state_get_blob(r, T_DATA, p, len))) {
		return e;
	}
	rs->ram_chunks++;
	rs->ram_next += len;
	rs->ram_seen = true;
	return 0;
}

static int load_pages(void *opaque, struct state_reader *r)
{
	struct vm_restore *rs = opaque;
	const void *ip, *dp;
	size_t ilen, dlen;
	int e;
	if (!rs->vm_seen || rs->irqchip)
		return state_fail(r, "out of order");
	if ((e = state_get_blob_ref(r, T_PAGES, &ip, &ilen)) || (e = state_get_blob_ref(r, T_PAGE_DATA, &dp, &dlen)))
		return e;
	if (ilen % 8 || ilen / 8 > VMSAVE_PAGES_MAX || dlen % 4096)
		return state_fail(r, "%zu index bytes, %zu data bytes", ilen, dlen);
	struct guest_mem *m = &rs->vm->mem;
	uint64_t npages = m->size / 4096;
	size_t n = ilen / 8, nd = 0;
	/* Check the whole batch before writing any of it. */
	for (size_t i = 0; i < n; i++) {
		uint64_t v;
		memcpy(&v, (const uint8_t *)ip + i * 8, 8);
		if ((v & ~PAGE_ZERO_FLAG) >= npages)
			return state_fail(r, "page %llu is outside guest RAM (%llu pages)",
					  (unsigned long long)(v & ~PAGE_ZERO_FLAG), (unsigned long long)npages);
		nd += !(v & PAGE_ZERO_FLAG);
	}
	if (nd * 4096 != dlen)
		return state_fail(r, "%zu pages with data, %zu bytes of data", nd, dlen);
	const uint8_t *d = dp;
	for (size_t i = 0; i < n;) {
		uint64_t v;
		memcpy(&v, (const uint8_t *)ip + i * 8, 8);
		uint64_t off = (v & ~PAGE_ZERO_FLAG) * 4096;
		if (v & PAGE_ZERO_FLAG) {
			/* A hole reads as zeros and costs no memory (a fresh
			 * destination's RAM is all holes: nothing to do then). */
			if (mem_next_data(m, off, off + 4096) < off + 4096 && mem_discard(m, off, 4096))
				memset(m->host + off, 0, 4096);
			i++;
			continue;
		}
		/* A run of consecutive pages with data goes into the memfd with
		 * one pwrite: the page cache fills without a page fault per 4 KiB
		 * page through the mapping. Not on transparent huge pages: a
		 * fault there maps 2 MiB, and a write through the file would
		 * allocate small pages. */
		size_t run = 1;
		while (i + run < n) {
			uint64_t w;
			memcpy(&w, (const uint8_t *)ip + (i + run) * 8, 8);
			if (w != v + run)
				break;
			run++;
		}
		if (m->fd < 0 || m->thp || pwrite(m->fd, d, run * 4096, (off_t)off) != (ssize_t)(run * 4096))
			memcpy(m->host + off, d, run * 4096);
		d += run * 4096;
		i += run;
	}
	rs->pages_loaded += n;
	rs->ram_seen = true;
	return 0;
}

static int load_sync(void *opaque, struct state_reader *r)
{
	struct vm_restore *rs = opaque;
	if (!rs->vm_seen || rs->irqchip || !rs->sync)
		return state_fail(r, rs->sync ? "out of order" : "a sync mark where none is expected");
	int e = rs->sync(rs);
	return e ? state_fail(r, "answering a sync mark: %s", strerror(-e)) : 0;
}

static int load_memory(void *opaque, struct state_reader *r)
{
	struct vm_restore *rs = opaque;
	if (!rs->vm_seen || rs->irqchip || rs->ram_seen || !rs->memory)
		return state_fail(r, rs->memory ? "out of order" : "a memory file where none is expected");
	rs->ram_seen = true;
	return rs->memory(rs, r);
}

static int load_irqchip(void *opaque, struct state_reader *r)
{
	struct vm_restore *rs = opaque;
	if (!rs->vm_seen || rs->irqchip)
		return state_fail(r, "out of order");
	rs->irqchip = true;
	return vm_arch_load_irqchip(rs->vm, r);
}

static int load_pit(void *opaque, struct state_reader *r)
{
	struct vm_restore *rs = opaque;
	if (!rs->irqchip || rs->pit)
		return state_fail(r, "out of order");
	rs->pit = true;
	return vm_arch_load_pit(rs->vm, r);
}

static int load_device(void *opaque, struct state_reader *r)
{
	struct vm_restore *rs = opaque;
	if (!rs->pit || rs->cpus)
		return state_fail(r, rs->vm_seen ? "out of order" : "unknown section");
	return devstate_load(&rs->vm->devstate, r);
}

static int load_cpu(void *opaque, struct state_reader *r)
{
	struct vm_restore *rs = opaque;
	if (!rs->pit || r->instance != rs->cpus || rs->cpus >= rs->vm->ncpus)
		return state_fail(r, "out of order or no such vCPU");
	const struct devstate_entry *miss = devstate_missing(&rs->vm->devstate);
	if (miss)
		return state_fail(r, "device %s[%u] missing before the vCPUs", miss->ops->name, miss->instance);
	rs->cpus++;
	return vcpu_state_load(rs->vm->vcpus[r->instance], r);
}

static int load_clock(void *opaque, struct state_reader *r)
{
	struct vm_restore *rs = opaque;
	if (!rs->vm_seen || rs->cpus != rs->vm->ncpus || rs->clock)
		return state_fail(r, "out of order");
	rs->clock = true;
	return vm_arch_load_clock(rs->vm, r);
}

int vm_restore_load(struct vm_restore *rs, struct state_source src, bool stream, char *err, size_t errlen)
{
	const struct state_loader loaders[] = {
		{ "vm", VM_SECTION_VERSION, load_vm, rs },
		{ "ram", 1, load_ram, rs },
		{ "pages", 1, load_pages, rs },
		{ "sync", 1, load_sync, rs },
		{ "memory", 1, load_memory, rs },
		{ "irqchip", 1, load_irqchip, rs },
		{ "pit", 1, load_pit, rs },
		{ VCPU_STATE_SECTION, VCPU_STATE_VERSION, load_cpu, rs },
		{ "clock", 1, load_clock, rs },
		{ STATE_ANY_SECTION, UINT32_MAX, load_device, rs },
	};
	size_t n = sizeof(loaders) / sizeof(loaders[0]);
	int r = stream ? state_load_stream(src, loaders, n, err, errlen) : state_load(src, loaders, n, err, errlen);
	if (r)
		return r;
	struct vm *vm = rs->vm;
	bool ram_ok = vm && (rs->ram_chunks ? rs->ram_next == vm->mem.size : rs->ram_seen);
	if (!rs->clock || !ram_ok) {
		snprintf(err, errlen, "the stream is incomplete (%s)",
			 !rs->vm_seen ? "no vm section" : !ram_ok ? "RAM missing" :
			 !rs->irqchip ? "no irqchip" : !rs->pit ? "no PIT" :
			 rs->cpus != vm->ncpus ? "vCPUs missing" : "no clock");
		return -EBADMSG;
	}
	uint64_t t = now_ns();
	r = vm_pit_ready(vm);
	rs->pit_wait_ns = now_ns() - t;
	if (r) {
		snprintf(err, errlen, "the PIT state could not be applied");
		return -EIO;
	}
	return 0;
}

int vm_restore_create(struct vm_restore *rs)
{
	const struct vm_config *c = rs->cmdline;
	rs->cfg.api_socket = c->api_socket;
	rs->cfg.dirty_choice = c->dirty_choice;
	rs->cfg.dirty_ring_entries = c->dirty_ring_entries;
	rs->cfg.result_fd = c->result_fd;
	rs->cfg.on_reboot = c->on_reboot;
	rs->cfg.incoming = c->incoming;
	rs->cfg.restore = c->restore;
	/* This process's sandbox and the files it opened before it. */
	rs->cfg.seccomp = c->seccomp;
	rs->cfg.jail = c->jail;
	rs->cfg.uid = c->uid;
	rs->cfg.gid = c->gid;
	rs->cfg.files = c->files;
	rs->cfg.test_violate = c->test_violate;
	rs->cfg.test_violate_ioctl = c->test_violate_ioctl;
	/* Device backends are this host's (its disk paths, its taps): from
	 * the command line; their guest-visible state comes from the stream,
	 * which refuses a device set that differs. */
	memcpy(rs->cfg.disks, c->disks, sizeof(c->disks));
	rs->cfg.ndisks = c->ndisks;
	memcpy(rs->cfg.nets, c->nets, sizeof(c->nets));
	rs->cfg.nnets = c->nnets;
	rs->cfg.rng = c->rng;
	rs->cfg.from_state = true;
	uint64_t t = now_ns();
	int r = vm_create(rs->target, &rs->cfg);
	rs->create_ns = now_ns() - t;
	rs->create_status = r;
	if (!r)
		rs->vm = rs->target;
	else
		vm_destroy(rs->target);
	return r;
}

int vm_load(struct vm *vm, struct state_source src, char *err, size_t errlen)
{
	struct vm_restore rs = { .vm = vm };
	return vm_restore_load(&rs, src, false, err, errlen);
}
