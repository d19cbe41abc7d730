/* One VM's guest CPU: model + MSR list + KVM state capabilities. */
#include "arch/x86/guestcpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86/cpufeat.h"
#include "arch/x86/cpuid.h"

static int rebuild_msrs(struct guest_cpu *g)
{
	msr_list_free(&g->msrs);
	msr_list_free(&g->dropped);
	g->mcg_cap = msr_mcg_cap(g->model.cpuid, g->host_mce_cap);
	struct msr_guest mg = { .cpuid = g->model.cpuid, .pmu = g->model.pmu, .mcg_cap = g->mcg_cap };
	return msr_build_list(&g->kvm_msrs, &mg, &g->msrs, &g->dropped);
}

static int cap(int fd, long c)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, c);
	return r < 0 ? 0 : r;
}

/* A throwaway VM and vCPU to ask KVM what it does with a CPUID. */
struct scratch {
	int vm, vcpu;
};

static int scratch_open(int kvm_fd, struct scratch *s)
{
	s->vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (s->vm < 0)
		return -errno;
	if (ioctl(s->vm, KVM_CREATE_IRQCHIP, 0) < 0 || (s->vcpu = ioctl(s->vm, KVM_CREATE_VCPU, 0)) < 0) {
		int err = -errno;
		close(s->vm);
		return err;
	}
	return 0;
}

static void scratch_close(struct scratch *s)
{
	if (s->vcpu >= 0)
		close(s->vcpu);
	if (s->vm >= 0)
		close(s->vm);
	s->vm = s->vcpu = -1;
}

static int get_cpuid2(int vcpu_fd, struct kvm_cpuid2 *c, unsigned nent)
{
	c->nent = nent;
	return ioctl(vcpu_fd, KVM_GET_CPUID2, c) < 0 ? -errno : 0;
}

struct kvm_cpuid2 *cpuid_vcpu_get(int vcpu_fd)
{
	for (unsigned n = 256; n <= 4096; n *= 4) {
		struct kvm_cpuid2 *c = calloc(1, cpuid_size(n));
		if (!c)
			return NULL;
		int r = get_cpuid2(vcpu_fd, c, n);
		if (r == -E2BIG) {
			free(c);
			continue;
		}
		if (r) {
			free(c);
			errno = -r;
			return NULL;
		}
		/* Linux before 6.5 ("KVM: x86: Update number of entries for
		 * KVM_GET_CPUID2 on success, not failure") leaves nent as the
		 * caller gave it: the entries past the vCPU's own are the
		 * caller's zeros (6.1 on SVM: 256 entries, most of them
		 * "0.0 = 0 0 0 0", went into snapshots as the guest's CPUID).
		 * A later KVM sets nent: smaller than asked for, it is the
		 * count. Equal, it is the count or the old behaviour: every KVM
		 * refuses a nent below the vCPU's count with E2BIG and accepts
		 * it from there, so the smallest accepted nent is the count
		 * (the entries are all in c already). */
		if (c->nent == n) {
			unsigned lo = 0, hi = n;
			while (lo < hi && !r) {
				unsigned mid = lo + (hi - lo) / 2;
				r = get_cpuid2(vcpu_fd, c, mid);
				if (!r && c->nent < mid)
					hi = c->nent;
				else if (!r)
					hi = mid;
				else if (r == -E2BIG)
					lo = mid + 1, r = 0;
			}
			if (r) {
				free(c);
				errno = -r;
				return NULL;
			}
			c->nent = hi;
		}
		return c;
	}
	errno = E2BIG;
	return NULL;
}

struct kvm_cpuid2 *cpuid_effective(int vcpu_fd, const struct kvm_cpuid2 *c)
{
	if (ioctl(vcpu_fd, KVM_SET_CPUID2, c) < 0)
		return NULL;
	return cpuid_vcpu_get(vcpu_fd);
}

/* Features KVM shows the guest although the CPUID given lacked them. */
static void forced_features(const struct kvm_cpuid2 *given, const struct kvm_cpuid2 *got, char *buf,
			    size_t len, int *first)
{
	buf[0] = '\0';
	*first = F_NONE;
	struct cpuid_cursor kgot = { .c = got }, kgiven = { .c = given };
	for (int f = 0; f < F_COUNT; f++) {
		if (!cpuid_cursor_has(&kgot, f) || cpuid_cursor_has(&kgiven, f) || f == F_HT)
			continue;
		if (*first == F_NONE)
			*first = f;
		size_t used = strlen(buf);
		snprintf(buf + used, len - used, "%s%s", used ? " " : "", cpu_features[f].name);
	}
}

static bool spec_removes(const char *spec, const char *name)
{
	char buf[CPUMODEL_SPEC_MAX];
	snprintf(buf, sizeof(buf), "%s", spec);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (t[0] == '-' && !strcmp(t + 1, name))
			return true;
	return false;
}

/* Some backends rewrite what KVM_SET_CPUID2 was given (kvm_pvm shows the
 * guest the host's values for features user code can detect natively).
 * The guest CPU is what KVM_GET_CPUID2 reads back, so the model, the MSR
 * list and snapshots all use that. A feature the user removed that the
 * backend puts back is an error; extras a named model did not ask for are
 * noted in model.backend_forced. */
static int settle_model(struct guest_cpu *g, struct scratch *s, char *err, size_t errlen)
{
	struct kvm_cpuid2 *got = cpuid_effective(s->vcpu, g->model.cpuid);
	if (!got) {
		snprintf(err, errlen, "KVM_SET_CPUID2 refused the CPU model: %s", strerror(errno));
		return -errno ? -errno : -EINVAL;
	}
	int first;
	forced_features(g->model.cpuid, got, g->model.backend_forced, sizeof(g->model.backend_forced), &first);
	/* A removal follows a comma (the model name comes first): without
	 * one, no feature can have been removed, and the loop's CPUID
	 * lookups are skipped. */
	bool removes = strstr(g->model.spec, ",-") != NULL;
	struct cpuid_cursor kgot = { .c = got }, kmodel = { .c = g->model.cpuid };
	for (int f = 0; f < F_COUNT && removes; f++) {
		if (cpuid_cursor_has(&kgot, f) && !cpuid_cursor_has(&kmodel, f) &&
		    spec_removes(g->model.spec, cpu_features[f].name)) {
			snprintf(err, errlen, "--cpu %s: %s shows the guest '%s' whatever Ember asks",
				 g->model.spec, g->host.backend, cpu_features[f].name);
			free(got);
			return -EINVAL;
		}
	}
	/* What "host" hid for the backend but the backend shows anyway is
	 * not hidden: say only what really is. */
	char masked[sizeof(g->model.backend_masked)];
	snprintf(masked, sizeof(masked), "%s", g->model.backend_masked);
	g->model.backend_masked[0] = '\0';
	char *save = NULL;
	for (char *t = strtok_r(masked, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		if (cpuid_has(got, cpufeat_lookup(t)))
			continue;
		size_t used = strlen(g->model.backend_masked);
		snprintf(g->model.backend_masked + used, sizeof(g->model.backend_masked) - used, "%s%s",
			 used ? ", " : "", t);
	}
	free(g->model.cpuid);
	g->model.cpuid = got;
	return 0;
}

int guest_cpu_init(struct guest_cpu *g, int kvm_fd, const char *backend, const char *spec,
		   char *err, size_t errlen)
{
	memset(g, 0, sizeof(*g));
	struct scratch s = { -1, -1 };
	int r = cpuid_host_caps(kvm_fd, backend, &g->host);
	if (r) {
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-r));
		return r;
	}
	if ((r = scratch_open(kvm_fd, &s))) {
		snprintf(err, errlen, "creating a scratch VM to probe the CPU: %s", strerror(-r));
		goto fail;
	}
	/* What KVM really shows when asked for everything it supports. */
	struct kvm_cpuid2 *eff = cpuid_effective(s.vcpu, g->host.supported);
	if (!eff) {
		r = -errno ? -errno : -EINVAL;
		snprintf(err, errlen, "KVM_SET_CPUID2 refused KVM's own supported CPUID: %s", strerror(-r));
		goto fail;
	}
	cpuid_clear(eff, F_OSXSAVE);
	cpuid_clear(eff, F_OSPKE);
	g->host.raw_supported = g->host.supported;
	g->host.supported = eff;
	if ((r = cpumodel_build(&g->model, spec, &g->host, err, errlen)) ||
	    (r = settle_model(g, &s, err, errlen)))
		goto fail;
	if ((r = msr_kvm_lists(kvm_fd, &g->kvm_msrs))) {
		snprintf(err, errlen, "KVM_GET_MSR_INDEX_LIST: %s", strerror(-r));
		goto fail;
	}
	if (ioctl(kvm_fd, KVM_X86_GET_MCE_CAP_SUPPORTED, &g->host_mce_cap) < 0)
		g->host_mce_cap = 0;
	if ((r = rebuild_msrs(g))) {
		snprintf(err, errlen, "MSR list: %s", strerror(-r));
		goto fail;
	}
	int x2 = cap(kvm_fd, KVM_CAP_XSAVE2);
	g->xsave_size = x2 > 0 ? (unsigned)x2 : cap(kvm_fd, KVM_CAP_XSAVE) ? 4096 : 0;
	g->sregs2 = cap(kvm_fd, KVM_CAP_SREGS2) > 0;
	g->xcrs = cap(kvm_fd, KVM_CAP_XCRS) > 0;
	g->debugregs = cap(kvm_fd, KVM_CAP_DEBUGREGS) > 0;
	g->vcpu_events = cap(kvm_fd, KVM_CAP_VCPU_EVENTS) > 0;
	g->nested_state_size = cap(kvm_fd, KVM_CAP_NESTED_STATE);
	g->nested_state = g->nested_state_size > 0;
	/* Destroying a VM waits for SRCU grace periods (~15 ms on kvm_pvm) and
	 * holds up creating the next: keep the scratch VM until teardown. */
	g->scratch_vm = s.vm;
	g->scratch_vcpu = s.vcpu;
	return 0;
fail:
	if (s.vm >= 0)
		scratch_close(&s);
	guest_cpu_free(g);
	return r;
}

int guest_cpu_check_cpuid(struct guest_cpu *g, int vcpu_fd, const struct kvm_cpuid2 *cpuid, char *err,
			  size_t errlen)
{
	int r = cpumodel_check_supported(cpuid, g->host.supported, err, errlen);
	if (r)
		return r;
	struct kvm_cpuid2 *got = cpuid_effective(vcpu_fd < 0 ? g->scratch_vcpu : vcpu_fd, cpuid);
	if (!got) {
		r = -errno ? -errno : -EINVAL;
		snprintf(err, errlen, "KVM_SET_CPUID2: %s", strerror(-r));
		return r;
	}
	char diff[400];
	if (cpuid_diff(cpuid, got, false, diff, sizeof(diff))) {
		snprintf(err, errlen, "this host's KVM shows the CPUID differently than the saved guest saw it: %s", diff);
		r = -EINVAL;
	}
	free(got);
	return r;
}

int guest_cpu_replace_cpuid(struct guest_cpu *g, const struct kvm_cpuid2 *cpuid, char *err,
			    size_t errlen)
{
	int r = cpumodel_check_supported(cpuid, g->host.supported, err, errlen);
	if (r)
		return r;
	struct kvm_cpuid2 *c = cpuid_dup(cpuid, 0);
	if (!c)
		return -ENOMEM;
	free(g->model.cpuid);
	g->model.cpuid = c;
	if ((r = rebuild_msrs(g)))
		snprintf(err, errlen, "MSR list: %s", strerror(-r));
	return r;
}

void guest_cpu_free(struct guest_cpu *g)
{
	struct scratch s = { g->scratch_vm, g->scratch_vcpu };
	if (g->scratch_vm > 0)
		scratch_close(&s);
	g->scratch_vm = g->scratch_vcpu = -1;
	cpumodel_free(&g->model);
	cpuid_host_free(&g->host);
	free(g->host.raw_supported);
	g->host.raw_supported = NULL;
	msr_list_free(&g->kvm_msrs);
	msr_list_free(&g->msrs);
	msr_list_free(&g->dropped);
}

int guest_cpu_setup_vm(struct guest_cpu *g, int vm_fd)
{
	if (g->host.pmu && !g->model.pmu) {
		/* api.rst 7.30 KVM_CAP_PMU_CAPABILITY: before any vCPU exists. */
		struct kvm_enable_cap ec = { .cap = KVM_CAP_PMU_CAPABILITY, .args = { KVM_PMU_CAP_DISABLE } };
		if (ioctl(vm_fd, KVM_ENABLE_CAP, &ec) < 0)
			return -errno;
	}
	/* Pending exceptions keep their payload (CR2, DR6) apart until
	 * delivered, so a saved vCPU with one pending restores exactly
	 * (api.rst 7.19 KVM_CAP_EXCEPTION_PAYLOAD). */
	if (cap(vm_fd, KVM_CAP_EXCEPTION_PAYLOAD) > 0) {
		struct kvm_enable_cap ec = { .cap = KVM_CAP_EXCEPTION_PAYLOAD, .args = { 1 } };
		if (ioctl(vm_fd, KVM_ENABLE_CAP, &ec) < 0)
			return -errno;
	}
	int x2 = cap(vm_fd, KVM_CAP_XSAVE2);
	if (x2 > 0)
		g->xsave_size = (unsigned)x2;
	return 0;
}

int guest_cpu_setup_vcpu(struct guest_cpu *g, int vcpu_fd, unsigned index, unsigned ncpus)
{
	struct kvm_cpuid2 *c = cpuid_for_vcpu(g->model.cpuid, index, ncpus);
	if (!c)
		return -ENOMEM;
	int r = ioctl(vcpu_fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
	free(c);
	if (r)
		return r;
	if (g->mcg_cap) {
		uint64_t mcg = g->mcg_cap;
		if (ioctl(vcpu_fd, KVM_X86_SETUP_MCE, &mcg) < 0)
			return -errno;
	}
	struct kvm_device_attr a = { .group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET };
	g->tsc_offset_attr = ioctl(vcpu_fd, KVM_HAS_DEVICE_ATTR, &a) == 0;
	int khz = ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);
	g->tsc_khz = khz > 0 ? khz : 0;
	return 0;
}
