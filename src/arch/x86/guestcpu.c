/* One VM's guest CPU: model + MSR list + KVM state capabilities. */
#include "arch/x86/guestcpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

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

int guest_cpu_init(struct guest_cpu *g, int kvm_fd, const char *backend, const char *spec,
		   char *err, size_t errlen)
{
	memset(g, 0, sizeof(*g));
	int r = cpuid_host_caps(kvm_fd, backend, &g->host);
	if (r) {
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-r));
		return r;
	}
	if ((r = cpumodel_build(&g->model, spec, &g->host, err, errlen)))
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
	return 0;
fail:
	guest_cpu_free(g);
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
	cpumodel_free(&g->model);
	cpuid_host_free(&g->host);
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
