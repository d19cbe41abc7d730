/* One vCPU's state <-> the "cpu" section. */
#include "arch/x86/vcpu_state.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/cpufeat.h"
#include "arch/x86/guestcpu.h"
#include "arch/x86/msr.h"
#include "log.h"
#include "vcpu.h"
#include "vm.h"

/* Field tags of the "cpu" section, version 1. */
enum {
	T_CPUID = 1,       /* kvm_cpuid_entry2[] */
	T_TSC_KHZ,         /* u32 */
	T_REGS,            /* struct kvm_regs */
	T_SREGS_KIND,      /* u8: 2 = kvm_sregs2, 1 = kvm_sregs */
	T_SREGS,
	T_FPU_KIND,        /* u8: 2 = XSAVE area, 1 = kvm_fpu */
	T_FPU,
	T_XCRS,            /* struct kvm_xcrs (only with KVM_CAP_XCRS) */
	T_MSRS,            /* kvm_msr_entry[] without IA32_TSC and IA32_TSC_DEADLINE */
	T_TSC,             /* u64 IA32_TSC, volatile: the guest TSC runs while paused */
	T_LAPIC,           /* struct kvm_lapic_state with TMCCT zeroed */
	T_LAPIC_TMCCT,     /* u32 timer current count, volatile */
	T_TSC_DEADLINE,    /* u64 (only when the MSR is in the list) */
	T_MP_STATE,        /* u32 */
	T_DEBUGREGS,       /* struct kvm_debugregs */
	T_EVENTS,          /* struct kvm_vcpu_events */
	T_NESTED,          /* KVM_GET_NESTED_STATE blob (only with KVM_CAP_NESTED_STATE) */
};

#define APIC_TMCCT 0x390
#define KIND_NEW 2
#define KIND_OLD 1

static int kvm_err(const char *what)
{
	int err = -errno;
	log_error("%s: %s", what, strerror(errno));
	return err;
}

/* The MSR list minus the two MSRs saved as their own fields. */
static bool own_field(uint32_t index)
{
	return index == MSR_IA32_TSC || index == MSR_IA32_TSC_DEADLINE;
}

static struct kvm_msrs *msrs_alloc(unsigned n)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));
	if (m)
		m->nmsrs = n;
	return m;
}

static int get_msrs(struct vcpu *v, const struct msr_list *list, struct kvm_msrs **out)
{
	struct kvm_msrs *m = msrs_alloc(list->n);
	if (!m)
		return -ENOMEM;
	for (unsigned i = 0; i < list->n; i++)
		m->entries[i].index = list->index[i];
	int got = ioctl(v->fd, KVM_GET_MSRS, m);
	if (got != (int)list->n) {
		if (got < 0)
			log_error("vCPU %u: KVM_GET_MSRS: %s", v->index, strerror(errno));
		else
			log_error("vCPU %u: KVM_GET_MSRS could not read MSR %#x", v->index, list->index[got]);
		free(m);
		return got < 0 ? -errno : -EIO;
	}
	*out = m;
	return 0;
}

static int set_msrs(struct vcpu *v, const struct kvm_msr_entry *e, unsigned n)
{
	struct kvm_msrs *m = msrs_alloc(n);
	if (!m)
		return -ENOMEM;
	memcpy(m->entries, e, n * sizeof(*e));
	int put = ioctl(v->fd, KVM_SET_MSRS, m);
	int r = 0;
	if (put != (int)n) {
		if (put < 0)
			r = kvm_err("KVM_SET_MSRS");
		else {
			log_error("vCPU %u: KVM refused MSR %#x = %#llx", v->index, e[put].index,
				  (unsigned long long)e[put].data);
			r = -EINVAL;
		}
	}
	free(m);
	return r;
}

static int save_fpu(struct vcpu *v, const struct guest_cpu *g, struct state_writer *w)
{
	if (g->xsave_size) {
		struct kvm_xsave *x = calloc(1, g->xsave_size > sizeof(*x) ? g->xsave_size : sizeof(*x));
		if (!x)
			return -ENOMEM;
		/* KVM_GET_XSAVE2 fills KVM_CAP_XSAVE2's size; older KVMs have
		 * only KVM_GET_XSAVE (4096 bytes). */
		int r = ioctl(v->fd, KVM_GET_XSAVE2, x);
		if (r < 0 && g->xsave_size == 4096)
			r = ioctl(v->fd, KVM_GET_XSAVE, x);
		if (r < 0) {
			r = kvm_err("KVM_GET_XSAVE2");
			free(x);
			return r;
		}
		state_put_u8(w, T_FPU_KIND, KIND_NEW);
		state_put_blob(w, T_FPU, x, g->xsave_size);
		free(x);
		return 0;
	}
	struct kvm_fpu fpu;
	if (ioctl(v->fd, KVM_GET_FPU, &fpu) < 0)
		return kvm_err("KVM_GET_FPU");
	state_put_u8(w, T_FPU_KIND, KIND_OLD);
	state_put_blob(w, T_FPU, &fpu, sizeof(fpu));
	return 0;
}

static int save_cpuid(struct vcpu *v, struct state_writer *w)
{
	struct kvm_cpuid2 *c = cpuid_vcpu_get(v->fd);
	if (!c)
		return kvm_err("KVM_GET_CPUID2");
	state_put_blob(w, T_CPUID, c->entries, c->nent * sizeof(c->entries[0]));
	free(c);
	return 0;
}

/* The fields of the section, in order. */
static int save_fields(struct vcpu *v, struct state_writer *w)
{
	struct guest_cpu *g = &v->vm->cpu;
	int r;
	if ((r = save_cpuid(v, w)))
		return r;
	int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	state_put_u32(w, T_TSC_KHZ, khz > 0 ? (uint32_t)khz : 0);

	struct kvm_regs regs;
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
		return kvm_err("KVM_GET_REGS");
	state_put_blob(w, T_REGS, &regs, sizeof(regs));
	if (g->sregs2) {
		struct kvm_sregs2 s2;
		if (ioctl(v->fd, KVM_GET_SREGS2, &s2) < 0)
			return kvm_err("KVM_GET_SREGS2");
		state_put_u8(w, T_SREGS_KIND, KIND_NEW);
		state_put_blob(w, T_SREGS, &s2, sizeof(s2));
	} else {
		struct kvm_sregs s;
		if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
			return kvm_err("KVM_GET_SREGS");
		state_put_u8(w, T_SREGS_KIND, KIND_OLD);
		state_put_blob(w, T_SREGS, &s, sizeof(s));
	}
	if ((r = save_fpu(v, g, w)))
		return r;
	if (g->xcrs) {
		struct kvm_xcrs xcrs;
		if (ioctl(v->fd, KVM_GET_XCRS, &xcrs) < 0)
			return kvm_err("KVM_GET_XCRS");
		state_put_blob(w, T_XCRS, &xcrs, sizeof(xcrs));
	}

	struct kvm_msrs *m = NULL;
	if ((r = get_msrs(v, &g->msrs, &m)))
		return r;
	struct kvm_msr_entry *rest = calloc(m->nmsrs + 1, sizeof(*rest));
	if (!rest) {
		free(m);
		return -ENOMEM;
	}
	unsigned nrest = 0;
	uint64_t tsc = 0, deadline = 0;
	bool has_deadline = false;
	for (unsigned i = 0; i < m->nmsrs; i++) {
		struct kvm_msr_entry *e = &m->entries[i];
		if (e->index == MSR_IA32_TSC)
			tsc = e->data;
		else if (e->index == MSR_IA32_TSC_DEADLINE) {
			deadline = e->data;
			has_deadline = true;
		} else
			rest[nrest++] = *e;
	}
	free(m);
	state_put_blob(w, T_MSRS, rest, nrest * sizeof(*rest));
	free(rest);
	state_put_u64_volatile(w, T_TSC, tsc);

	struct kvm_lapic_state lapic;
	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		return kvm_err("KVM_GET_LAPIC");
	uint32_t tmcct;
	memcpy(&tmcct, &lapic.regs[APIC_TMCCT], 4);
	memset(&lapic.regs[APIC_TMCCT], 0, 4);
	state_put_blob(w, T_LAPIC, &lapic, sizeof(lapic));
	state_put_u32_volatile(w, T_LAPIC_TMCCT, tmcct);
	if (has_deadline)
		state_put_u64(w, T_TSC_DEADLINE, deadline);

	struct kvm_mp_state mp;
	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) < 0)
		return kvm_err("KVM_GET_MP_STATE");
	state_put_u32(w, T_MP_STATE, mp.mp_state);
	if (g->debugregs) {
		struct kvm_debugregs dr;
		if (ioctl(v->fd, KVM_GET_DEBUGREGS, &dr) < 0)
			return kvm_err("KVM_GET_DEBUGREGS");
		state_put_blob(w, T_DEBUGREGS, &dr, sizeof(dr));
	}
	if (g->vcpu_events) {
		struct kvm_vcpu_events ev;
		if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
			return kvm_err("KVM_GET_VCPU_EVENTS");
		state_put_blob(w, T_EVENTS, &ev, sizeof(ev));
	}
	if (g->nested_state) {
		size_t sz = (size_t)g->nested_state_size;
		struct kvm_nested_state *ns = calloc(1, sz);
		if (!ns)
			return -ENOMEM;
		ns->size = (uint32_t)sz;
		if (ioctl(v->fd, KVM_GET_NESTED_STATE, ns) < 0) {
			r = kvm_err("KVM_GET_NESTED_STATE");
			free(ns);
			return r;
		}
		state_put_blob(w, T_NESTED, ns, ns->size <= sz ? ns->size : sz);
		free(ns);
	}
	return 0;
}

int vcpu_state_save(struct vcpu *v, struct state_writer *w)
{
	int r = state_begin_section(w, VCPU_STATE_SECTION, v->index, VCPU_STATE_VERSION);
	if (!r)
		r = save_fields(v, w);
	return r ? r : state_end_section(w);
}

/* Everything a "cpu" section holds, read before any of it is applied. */
struct cpu_fields {
	const void *cpuid, *regs, *sregs, *fpu, *xcrs, *msrs, *lapic, *debugregs, *events, *nested;
	size_t cpuid_len, sregs_len, fpu_len, msrs_len, nested_len;
	uint8_t sregs_kind, fpu_kind;
	uint32_t tsc_khz, tmcct, mp_state;
	uint64_t tsc, deadline;
	bool has_deadline;
};

/* An optional field: present when the next tag is `tag`. */
static bool next_is(struct state_reader *r, int tag)
{
	return state_peek_tag(r) == tag;
}

static int get_blob_sized(struct state_reader *r, int tag, const void **p, size_t want)
{
	size_t len;
	int e = state_get_blob_ref(r, (uint16_t)tag, p, &len);
	if (!e && len != want)
		return state_fail(r, "field %d: %zu bytes, expected %zu", tag, len, want);
	return e;
}

static int read_fields(struct state_reader *r, const struct guest_cpu *g, struct cpu_fields *f)
{
	int e;
	memset(f, 0, sizeof(*f));
	if ((e = state_get_blob_ref(r, T_CPUID, &f->cpuid, &f->cpuid_len)) ||
	    (e = state_get_u32(r, T_TSC_KHZ, &f->tsc_khz)) ||
	    (e = get_blob_sized(r, T_REGS, &f->regs, sizeof(struct kvm_regs))) ||
	    (e = state_get_u8(r, T_SREGS_KIND, &f->sregs_kind)))
		return e;
	size_t want = f->sregs_kind == KIND_NEW ? sizeof(struct kvm_sregs2) : sizeof(struct kvm_sregs);
	if (f->sregs_kind != KIND_NEW && f->sregs_kind != KIND_OLD)
		return state_fail(r, "unknown segment register format %u", f->sregs_kind);
	if (f->sregs_kind == KIND_NEW && !g->sregs2)
		return state_fail(r, "saved with KVM_GET_SREGS2, which this host's KVM lacks");
	if ((e = get_blob_sized(r, T_SREGS, &f->sregs, want)) ||
	    (e = state_get_u8(r, T_FPU_KIND, &f->fpu_kind)) ||
	    (e = state_get_blob_ref(r, T_FPU, &f->fpu, &f->fpu_len)))
		return e;
	if (f->fpu_kind == KIND_NEW) {
		if (!g->xsave_size)
			return state_fail(r, "saved with XSAVE, which this host's KVM lacks");
		if (f->fpu_len < 4096 || f->fpu_len > g->xsave_size)
			return state_fail(r, "XSAVE area of %zu bytes; this host takes 4096..%u",
					  f->fpu_len, g->xsave_size);
	} else if (f->fpu_kind != KIND_OLD || f->fpu_len != sizeof(struct kvm_fpu)) {
		return state_fail(r, "bad FPU state (format %u, %zu bytes)", f->fpu_kind, f->fpu_len);
	}
	if (next_is(r, T_XCRS) && (e = get_blob_sized(r, T_XCRS, &f->xcrs, sizeof(struct kvm_xcrs))))
		return e;
	if ((e = state_get_blob_ref(r, T_MSRS, &f->msrs, &f->msrs_len)) ||
	    (e = state_get_u64(r, T_TSC, &f->tsc)) ||
	    (e = get_blob_sized(r, T_LAPIC, &f->lapic, sizeof(struct kvm_lapic_state))) ||
	    (e = state_get_u32(r, T_LAPIC_TMCCT, &f->tmcct)))
		return e;
	if (f->msrs_len % sizeof(struct kvm_msr_entry))
		return state_fail(r, "MSR field of %zu bytes", f->msrs_len);
	if (next_is(r, T_TSC_DEADLINE)) {
		if ((e = state_get_u64(r, T_TSC_DEADLINE, &f->deadline)))
			return e;
		f->has_deadline = true;
	}
	if ((e = state_get_u32(r, T_MP_STATE, &f->mp_state)))
		return e;
	if (next_is(r, T_DEBUGREGS) &&
	    (e = get_blob_sized(r, T_DEBUGREGS, &f->debugregs, sizeof(struct kvm_debugregs))))
		return e;
	if (next_is(r, T_EVENTS) &&
	    (e = get_blob_sized(r, T_EVENTS, &f->events, sizeof(struct kvm_vcpu_events))))
		return e;
	if (next_is(r, T_NESTED) && (e = state_get_blob_ref(r, T_NESTED, &f->nested, &f->nested_len)))
		return e;
	if (f->nested && (!g->nested_state || f->nested_len < sizeof(struct kvm_nested_state) ||
			  f->nested_len > (size_t)g->nested_state_size))
		return state_fail(r, "nested state that this host's KVM cannot take");
	/* KVM reads as many bytes as the blob's own size field says: it must
	 * be the field's length, or KVM would read past the copy (found by
	 * tests/fuzz/fuzz_stream.c). */
	uint32_t nsize;
	if (f->nested) {
		memcpy(&nsize, (const uint8_t *)f->nested + offsetof(struct kvm_nested_state, size), sizeof(nsize));
		if (nsize != f->nested_len)
			return state_fail(r, "nested state of %zu bytes says it has %u", f->nested_len, nsize);
	}
	return 0;
}

/* The CPUID from the stream: KVM must be able to give it, and it decides
 * the MSR list the MSR field is checked against. */
static int load_cpuid(struct vcpu *v, struct state_reader *r, const struct cpu_fields *f)
{
	size_t esz = sizeof(struct kvm_cpuid_entry2);
	if (!f->cpuid_len || f->cpuid_len % esz || f->cpuid_len / esz > 4096)
		return state_fail(r, "CPUID field of %zu bytes", f->cpuid_len);
	struct kvm_cpuid2 *c = cpuid_from_entries(f->cpuid, f->cpuid_len);
	if (!c)
		return -ENOMEM;
	int dup = cpuid_find_duplicate(c);
	if (dup >= 0) {
		int e = state_fail(r, "the CPUID lists %#x.%u twice", c->entries[dup].function, c->entries[dup].index);
		free(c);
		return e;
	}
	/* The guest must see exactly the saved CPUID here too. The fields
	 * KVM fills from CR4, APIC_BASE, XCR0 and XSS (cpuid_runtime_mask)
	 * show this fresh vCPU's state until those are loaded:
	 * check_loaded compares them once they are. */
	char err[512];
	int e = guest_cpu_check_cpuid(&v->vm->cpu, v->fd, c, err, sizeof(err));
	/* A stream without the model's CPUID (vm section v3): the model is
	 * what the vCPUs had, so the MSR list and a later save follow it. */
	if (!e && !v->vm->cpu.model_from_state)
		e = guest_cpu_replace_cpuid(&v->vm->cpu, c, err, sizeof(err));
	if (e)
		state_fail(r, "CPU: %s", err);
	free(c);
	return e;
}

/* The saved MSRs must be exactly the list this CPUID gives. */
static int check_msrs(struct state_reader *r, const struct msr_list *list, const struct cpu_fields *f)
{
	const struct kvm_msr_entry *e = f->msrs;
	unsigned n = (unsigned)(f->msrs_len / sizeof(*e)), expect = 0;
	for (unsigned i = 0; i < list->n; i++)
		if (!own_field(list->index[i]))
			expect++;
	for (unsigned i = 0; i < n; i++) {
		if (own_field(e[i].index) || !msr_list_has(list, e[i].index))
			return state_fail(r, "MSR %#x is saved but the guest CPU does not have it", e[i].index);
		if (i && e[i].index <= e[i - 1].index)
			return state_fail(r, "MSR %#x out of order", e[i].index);
	}
	if (n != expect)
		return state_fail(r, "%u MSRs saved, the guest CPU has %u", n, expect);
	if (msr_list_has(list, MSR_IA32_TSC_DEADLINE) != f->has_deadline)
		return state_fail(r, "TSC deadline MSR does not match the guest CPU");
	return 0;
}

static int put(struct vcpu *v, struct state_reader *r, unsigned long req, const void *arg, const char *name)
{
	if (ioctl(v->fd, req, arg) < 0)
		return state_fail(r, "%s: %s", name, strerror(errno));
	return 0;
}

/* Everything after the CPUID, in the order KVM needs (docs/cpu.md). */
static int apply_state(struct vcpu *v, struct state_reader *r, const struct cpu_fields *f)
{
	struct guest_cpu *g = &v->vm->cpu;
	int e;

	int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (f->tsc_khz && khz > 0 && (uint32_t)khz != f->tsc_khz &&
	    ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)f->tsc_khz) < 0)
		return state_fail(r, "the guest TSC ran at %u kHz; this host (%d kHz) cannot scale it: %s",
				  f->tsc_khz, khz, strerror(errno));
	if (f->sregs_kind == KIND_NEW)
		e = put(v, r, KVM_SET_SREGS2, f->sregs, "KVM_SET_SREGS2");
	else
		e = put(v, r, KVM_SET_SREGS, f->sregs, "KVM_SET_SREGS");
	if (e || (e = put(v, r, KVM_SET_REGS, f->regs, "KVM_SET_REGS")))
		return e;
	if (f->fpu_kind == KIND_NEW) {
		/* KVM_SET_XSAVE reads KVM_CAP_XSAVE2's size: pad a shorter area. */
		size_t sz = g->xsave_size;
		void *x = calloc(1, sz);
		if (!x)
			return -ENOMEM;
		memcpy(x, f->fpu, f->fpu_len);
		e = put(v, r, KVM_SET_XSAVE, x, "KVM_SET_XSAVE");
		free(x);
	} else {
		e = put(v, r, KVM_SET_FPU, f->fpu, "KVM_SET_FPU");
	}
	if (e)
		return e;
	if (f->xcrs && (e = put(v, r, KVM_SET_XCRS, f->xcrs, "KVM_SET_XCRS")))
		return e;

	/* MSRs (IA32_TSC with them: KVM keeps vCPUs written within a second
	 * of each other in sync), then the LAPIC, which needs APIC_BASE from
	 * the sregs, then TSC_DEADLINE, which needs LVTT in deadline mode. */
	unsigned n = (unsigned)(f->msrs_len / sizeof(struct kvm_msr_entry));
	struct kvm_msr_entry *all = calloc(n + 1, sizeof(*all));
	if (!all)
		return -ENOMEM;
	memcpy(all, f->msrs, f->msrs_len);
	all[n] = (struct kvm_msr_entry){ .index = MSR_IA32_TSC, .data = f->tsc };
	e = set_msrs(v, all, n + 1);
	free(all);
	if (e)
		return state_fail(r, "KVM_SET_MSRS failed (see above)");
	struct kvm_lapic_state lapic;
	memcpy(&lapic, f->lapic, sizeof(lapic));
	memcpy(&lapic.regs[APIC_TMCCT], &f->tmcct, 4);
	if ((e = put(v, r, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC")))
		return e;
	if (f->has_deadline) {
		struct kvm_msr_entry d = { .index = MSR_IA32_TSC_DEADLINE, .data = f->deadline };
		if (set_msrs(v, &d, 1))
			return state_fail(r, "KVM_SET_MSRS (TSC deadline) failed");
	}
	struct kvm_mp_state mp = { .mp_state = f->mp_state };
	if ((e = put(v, r, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE")))
		return e;
	if (f->debugregs && (e = put(v, r, KVM_SET_DEBUGREGS, f->debugregs, "KVM_SET_DEBUGREGS")))
		return e;
	if (f->nested) {
		void *ns = malloc(f->nested_len);
		if (!ns)
			return -ENOMEM;
		memcpy(ns, f->nested, f->nested_len);
		e = put(v, r, KVM_SET_NESTED_STATE, ns, "KVM_SET_NESTED_STATE");
		free(ns);
		if (e)
			return e;
	}
	/* Pending exceptions, NMIs and interrupt shadows last (api.rst
	 * KVM_SET_VCPU_EVENTS), after everything they depend on. */
	if (f->events && (e = put(v, r, KVM_SET_VCPU_EVENTS, f->events, "KVM_SET_VCPU_EVENTS")))
		return e;
	return 0;
}

static int discard_write(void *opaque, const void *buf, size_t len)
{
	return 0;
}

/* A field KVM shows that is not the one loaded: "at byte N" for the first
 * byte that differs (a blob shorter on one side counts as zeros there). */
static int blob_differs(struct state_reader *r, const char *what, const void *saved, size_t slen,
			const void *shown, size_t hlen)
{
	const uint8_t *a = saved, *b = shown;
	for (size_t i = 0; i < (slen > hlen ? slen : hlen); i++) {
		uint8_t x = i < slen ? a[i] : 0, y = i < hlen ? b[i] : 0;
		if (x != y)
			return state_fail(r, "with the state loaded, this host's KVM shows %s differently than saved: "
					  "byte %#zx is %02x, saved %02x", what, i, y, x);
	}
	return 0;
}

/* SYSENTER_ESP/EIP hold 32 bits on AMD CPUs: KVM keeps only those unless
 * the guest's CPUID says Intel (arch/x86/kvm/svm/svm.c, svm_set_msr),
 * while a CPU that kept 64 (QEMU's TCG) may have shown the guest more. */
static uint64_t msr_state_mask(uint32_t index, bool intel_guest)
{
	if (!intel_guest && (index == MSR_IA32_SYSENTER_ESP || index == MSR_IA32_SYSENTER_EIP))
		return 0xffffffffull;
	return ~0ull;
}

static int check_loaded_msrs(struct state_reader *r, const struct cpu_fields *f, const struct cpu_fields *k,
			     bool intel_guest)
{
	const struct kvm_msr_entry *a = f->msrs, *b = k->msrs;
	size_t n = f->msrs_len / sizeof(*a);
	if (k->msrs_len != f->msrs_len)
		return state_fail(r, "with the state loaded, KVM shows %zu MSRs, saved %zu", k->msrs_len / sizeof(*b), n);
	for (size_t i = 0; i < n; i++) {
		uint64_t m = msr_state_mask(a[i].index, intel_guest);
		if (a[i].index != b[i].index || ((a[i].data ^ b[i].data) & m))
			return state_fail(r, "with the state loaded, this host's KVM shows MSR %#x = %#llx, saved %#llx",
					  a[i].index, (unsigned long long)b[i].data, (unsigned long long)a[i].data);
	}
	return 0;
}

/* What a guest would notice: everything loaded is read back as a save
 * would write it (the saver's own code) and compared with the stream.
 * Exact, but for the rules KVM documents or implements (docs/cpu.md,
 * "Read back after loading"): the MSR mask above; the TSC runs on while
 * the state loads, and KVM gives a vCPU written within a second of
 * another that one's offset (kvm_synchronize_tsc), so it may be up to a
 * second behind but no more; fields the stream lacks (another KVM's
 * save) are not compared. */
static int check_loaded(struct vcpu *v, struct state_reader *r, const struct cpu_fields *f)
{
	struct guest_cpu *g = &v->vm->cpu;
	struct state_writer w;
	int e = state_writer_init(&w, (struct state_sink){ discard_write, NULL });
	if (!e)
		e = state_begin_section(&w, VCPU_STATE_SECTION, v->index, VCPU_STATE_VERSION);
	if (!e)
		e = save_fields(v, &w);
	if (e) {
		state_writer_destroy(&w);
		return state_fail(r, "reading the loaded vCPU back: %s", strerror(-e));
	}
	struct state_reader back = { .p = w.sec.data, .len = w.sec.len };
	struct cpu_fields k;
	if (read_fields(&back, g, &k)) {
		e = state_fail(r, "reading the loaded vCPU back: %s", back.msg);
		state_writer_destroy(&w);
		return e;
	}
	struct kvm_cpuid2 *shown = cpuid_from_entries(k.cpuid, k.cpuid_len);
	struct kvm_cpuid2 *saved = cpuid_from_entries(f->cpuid, f->cpuid_len);
	char diff[512];
	if (!shown || !saved) {
		e = -ENOMEM;
		goto out;
	}
	char vendor[13];
	cpuid_vendor(saved, vendor);
	uint64_t second = (uint64_t)(f->tsc_khz ? f->tsc_khz : k.tsc_khz) * 1000;
	if (cpuid_diff(saved, shown, true, diff, sizeof(diff)))
		e = state_fail(r, "with the state loaded, this host's KVM shows the CPUID differently than the saved "
			       "guest saw it: %s", diff);
	else if (f->tsc_khz && k.tsc_khz != f->tsc_khz)
		e = state_fail(r, "with the state loaded, the guest TSC runs at %u kHz, saved %u", k.tsc_khz, f->tsc_khz);
	else if (!(e = blob_differs(r, "the registers", f->regs, sizeof(struct kvm_regs), k.regs,
				    sizeof(struct kvm_regs))) &&
		 !(e = f->sregs_kind != k.sregs_kind ? 0 :
		       blob_differs(r, "the segment and control registers", f->sregs, f->sregs_len, k.sregs, k.sregs_len)) &&
		 !(e = f->fpu_kind != k.fpu_kind ? 0 :
		       blob_differs(r, f->fpu_kind == KIND_NEW ? "the XSAVE area" : "the FPU", f->fpu, f->fpu_len,
				    k.fpu, k.fpu_len)) &&
		 !(e = !f->xcrs || !k.xcrs ? 0 :
		       blob_differs(r, "the XCRs", f->xcrs, sizeof(struct kvm_xcrs), k.xcrs, sizeof(struct kvm_xcrs))) &&
		 !(e = check_loaded_msrs(r, f, &k, !strcmp(vendor, "GenuineIntel"))) &&
		 !(e = blob_differs(r, "the LAPIC", f->lapic, sizeof(struct kvm_lapic_state), k.lapic,
				    sizeof(struct kvm_lapic_state))) &&
		 !(e = !f->debugregs || !k.debugregs ? 0 :
		       blob_differs(r, "the debug registers", f->debugregs, sizeof(struct kvm_debugregs), k.debugregs,
				    sizeof(struct kvm_debugregs))) &&
		 !(e = !f->events || !k.events ? 0 :
		       blob_differs(r, "the pending events", f->events, sizeof(struct kvm_vcpu_events), k.events,
				    sizeof(struct kvm_vcpu_events))) &&
		 !(e = !f->nested || !k.nested ? 0 :
		       blob_differs(r, "the nested state", f->nested, f->nested_len, k.nested, k.nested_len))) {
		if (f->has_deadline != k.has_deadline || f->deadline != k.deadline)
			e = state_fail(r, "with the state loaded, KVM shows TSC_DEADLINE %#llx, saved %#llx",
				       (unsigned long long)k.deadline, (unsigned long long)f->deadline);
		else if (k.mp_state != f->mp_state)
			e = state_fail(r, "with the state loaded, KVM shows MP state %u, saved %u", k.mp_state, f->mp_state);
		else if (k.tsc + second < f->tsc)
			e = state_fail(r, "with the state loaded, the guest TSC is %#llx, saved %#llx: it would go back "
				       "(KVM did not take the saved TSC)", (unsigned long long)k.tsc, (unsigned long long)f->tsc);
	}
out:
	free(shown);
	free(saved);
	state_writer_destroy(&w);
	return e;
}

int vcpu_state_load(struct vcpu *v, struct state_reader *r)
{
	struct guest_cpu *g = &v->vm->cpu;
	struct cpu_fields f;
	int e = read_fields(r, g, &f);
	if (e || (e = load_cpuid(v, r, &f)) || (e = check_msrs(r, &g->msrs, &f)) || (e = apply_state(v, r, &f)))
		return e;
	return check_loaded(v, r, &f);
}
