/* vm_save / vm_load: the sections of a whole VM, in restore order. */
#include "migration/vmsave.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/vcpu_state.h"
#include "arch/x86/vm_state.h"
#include "log.h"
#include "vcpu.h"
#include "vm.h"

enum { T_NCPUS = 1, T_MEM_SIZE, T_PMU, T_MCG_CAP, T_SPEC };   /* "vm" v1 */
enum { T_GPA = 1, T_LEN, T_DATA, T_ZERO };                    /* "ram" v1 */

static bool all_zero(const uint8_t *p, size_t len)
{
	static const uint8_t zero[4096];
	for (size_t off = 0; off < len; off += sizeof(zero)) {
		size_t n = len - off < sizeof(zero) ? len - off : sizeof(zero);
		if (memcmp(p + off, zero, n))
			return false;
	}
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
			int r = state_begin_section(w, "ram", chunk++, 1);
			if (r)
				return r;
			state_put_u64(w, T_GPA, reg->gpa + off);
			state_put_u64(w, T_LEN, len);
			if (all_zero(p, len))
				state_put_u8(w, T_ZERO, 1);
			else
				state_put_blob(w, T_DATA, p, len);
			if ((r = state_end_section(w)))
				return r;
		}
	}
	return 0;
}

int vm_save(struct vm *vm, struct state_writer *w)
{
	int r = state_begin_section(w, "vm", 0, 1);
	if (r)
		return r;
	state_put_u32(w, T_NCPUS, vm->ncpus);
	state_put_u64(w, T_MEM_SIZE, vm->mem.size);
	state_put_u8(w, T_PMU, vm->cpu.model.pmu);
	state_put_u64(w, T_MCG_CAP, vm->cpu.mcg_cap);
	state_put_blob(w, T_SPEC, vm->cpu.model.spec, strlen(vm->cpu.model.spec));
	if ((r = state_end_section(w)) || (r = save_ram(vm, w)) || (r = vm_arch_save_devices(vm, w)))
		return r;
	for (unsigned i = 0; i < vm->ncpus; i++)
		if ((r = vcpu_state_save(vm->vcpus[i], w)))
			return r;
	if ((r = vm_arch_save_clock(vm, w)))
		return r;
	return state_writer_finish(w);
}

/* What has been loaded so far: sections must come in save order. */
struct load_ctx {
	struct vm *vm;
	bool vm_seen, irqchip, pit, clock;
	unsigned cpus;               /* "cpu" sections loaded, in index order */
	uint64_t ram_next;           /* bytes of RAM loaded, in order */
	uint32_t ram_chunks;
};

static int load_vm(void *opaque, struct state_reader *r)
{
	struct load_ctx *c = opaque;
	struct vm *vm = c->vm;
	uint32_t ncpus;
	uint64_t mem, mcg;
	uint8_t pmu;
	const void *spec;
	size_t spec_len;
	int e;
	if (c->vm_seen)
		return state_fail(r, "a second vm section");
	if ((e = state_get_u32(r, T_NCPUS, &ncpus)) || (e = state_get_u64(r, T_MEM_SIZE, &mem)) ||
	    (e = state_get_u8(r, T_PMU, &pmu)) || (e = state_get_u64(r, T_MCG_CAP, &mcg)) ||
	    (e = state_get_blob_ref(r, T_SPEC, &spec, &spec_len)))
		return e;
	int sl = spec_len > 64 ? 64 : (int)spec_len;
	if (ncpus != vm->ncpus)
		return state_fail(r, "saved with %u vCPUs, this VM has %u (use --cpus %u)", ncpus, vm->ncpus, ncpus);
	if (mem != vm->mem.size)
		return state_fail(r, "saved with %llu MiB of RAM, this VM has %llu MiB",
				  (unsigned long long)(mem >> 20), (unsigned long long)(vm->mem.size >> 20));
	if (!!pmu != vm->cpu.model.pmu || mcg != vm->cpu.mcg_cap)
		return state_fail(r, "saved with --cpu %.*s (PMU %s, MCG_CAP %#llx); this VM differs: "
				  "use the same --cpu", sl, (const char *)spec, pmu ? "on" : "off",
				  (unsigned long long)mcg);
	c->vm_seen = true;
	return 0;
}

static int load_ram(void *opaque, struct state_reader *r)
{
	struct load_ctx *c = opaque;
	uint64_t gpa, len;
	int e;
	if (!c->vm_seen || c->irqchip)
		return state_fail(r, "out of order");
	if (r->instance != c->ram_chunks)
		return state_fail(r, "chunk %u where %u was expected", r->instance, c->ram_chunks);
	if ((e = state_get_u64(r, T_GPA, &gpa)) || (e = state_get_u64(r, T_LEN, &len)))
		return e;
	if (len == 0 || len > VMSAVE_RAM_CHUNK)
		return state_fail(r, "chunk of %llu bytes", (unsigned long long)len);
	uint8_t *p = mem_ptr(&c->vm->mem, gpa, len);
	if (!p)
		return state_fail(r, "%#llx+%#llx is not guest RAM", (unsigned long long)gpa,
				  (unsigned long long)len);
	if (state_peek_tag(r) == T_ZERO) {
		uint8_t z;
		if ((e = state_get_u8(r, T_ZERO, &z)))
			return e;
		memset(p, 0, len);
	} else if ((e = state_get_blob(r, T_DATA, p, len))) {
		return e;
	}
	c->ram_chunks++;
	c->ram_next += len;
	return 0;
}

static int load_irqchip(void *opaque, struct state_reader *r)
{
	struct load_ctx *c = opaque;
	if (!c->vm_seen || c->irqchip)
		return state_fail(r, "out of order");
	c->irqchip = true;
	return vm_arch_load_irqchip(c->vm, r);
}

static int load_pit(void *opaque, struct state_reader *r)
{
	struct load_ctx *c = opaque;
	if (!c->irqchip || c->pit)
		return state_fail(r, "out of order");
	c->pit = true;
	return vm_arch_load_pit(c->vm, r);
}

static int load_cpu(void *opaque, struct state_reader *r)
{
	struct load_ctx *c = opaque;
	if (!c->pit || r->instance != c->cpus || c->cpus >= c->vm->ncpus)
		return state_fail(r, "out of order or no such vCPU");
	c->cpus++;
	return vcpu_state_load(c->vm->vcpus[r->instance], r);
}

static int load_clock(void *opaque, struct state_reader *r)
{
	struct load_ctx *c = opaque;
	if (c->cpus != c->vm->ncpus || c->clock)
		return state_fail(r, "out of order");
	c->clock = true;
	return vm_arch_load_clock(c->vm, r);
}

int vm_load(struct vm *vm, struct state_source src, char *err, size_t errlen)
{
	struct load_ctx c = { .vm = vm };
	const struct state_loader loaders[] = {
		{ "vm", 1, load_vm, &c },
		{ "ram", 1, load_ram, &c },
		{ "irqchip", 1, load_irqchip, &c },
		{ "pit", 1, load_pit, &c },
		{ VCPU_STATE_SECTION, VCPU_STATE_VERSION, load_cpu, &c },
		{ "clock", 1, load_clock, &c },
	};
	int r = state_load(src, loaders, sizeof(loaders) / sizeof(loaders[0]), err, errlen);
	if (r)
		return r;
	if (!c.clock || c.ram_next != vm->mem.size) {
		snprintf(err, errlen, "the stream is incomplete (%s)",
			 !c.vm_seen ? "no vm section" : c.ram_next != vm->mem.size ? "RAM missing" :
			 !c.irqchip ? "no irqchip" : !c.pit ? "no PIT" :
			 c.cpus != vm->ncpus ? "vCPUs missing" : "no clock");
		return -EBADMSG;
	}
	return 0;
}
