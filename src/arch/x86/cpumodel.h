/* The guest CPU model: one policy, in one place, that turns what KVM
 * supports (KVM_GET_SUPPORTED_CPUID) and the user's `--cpu MODEL,+f,-f`
 * into the guest's CPUID. Models: "host" (everything this host's KVM can
 * give) and named baselines (x86-64, x86-64-v2, -v3, -v4) whose feature
 * set is the same on every host, for migration. Pure: no KVM needed, so
 * every model is unit-tested against recorded hosts. */
#ifndef EMBER_X86_CPUMODEL_H
#define EMBER_X86_CPUMODEL_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>

#define CPUMODEL_SPEC_MAX 256

/* What the host offers, gathered once (cpuid_host_caps()). */
struct cpu_host {
	struct kvm_cpuid2 *supported;  /* what KVM shows a guest given everything it supports */
	struct kvm_cpuid2 *raw_supported; /* KVM_GET_SUPPORTED_CPUID itself, when it differs */
	bool pmu;                      /* KVM gives guests a PMU (enable_pmu) */
	const char *backend;           /* "kvm_pvm", "kvm_intel", ... */
};

struct cpu_model {
	char spec[CPUMODEL_SPEC_MAX];  /* as given: "host,-cx16" */
	char base[32];                 /* "host", "x86-64-v2" */
	struct kvm_cpuid2 *cpuid;      /* the guest CPUID, before per-vCPU topology */
	bool pmu;                      /* the guest has a PMU */
	char backend_masked[128];      /* features "host" hid for this backend, "" if none */
	char backend_forced[1024];     /* features the backend shows although not asked for */
};

/* Checks model and feature names only (no KVM): for the command line.
 * 0, or -EINVAL with a one-line message in err. */
int cpumodel_check_spec(const char *spec, char *err, size_t errlen);

/* Builds the model. 0, or -EINVAL (bad or unsatisfiable spec) with a
 * one-line message in err, or -ENOMEM. */
int cpumodel_build(struct cpu_model *m, const char *spec, const struct cpu_host *host,
		   char *err, size_t errlen);
void cpumodel_free(struct cpu_model *m);

/* Checks that every named feature of `guest` is in `supported` (e.g. a
 * CPUID read from a snapshot). 0 or -EINVAL naming what is missing. */
int cpumodel_check_supported(const struct kvm_cpuid2 *guest, const struct kvm_cpuid2 *supported,
			     char *err, size_t errlen);

/* Whether guest CPU `a` is the model `b` is: vendor, family/model/stepping
 * and every named feature but the per-vCPU topology bits (ht, cmp_legacy)
 * and those KVM derives from the vCPU's state (cpuid_runtime_mask). 0
 * when they are; 1 with "it has avx avx2; it lacks pku" (a against b) in
 * err. Pure. */
int cpumodel_diff(const struct kvm_cpuid2 *a, const struct kvm_cpuid2 *b, char *err, size_t errlen);

/* Model names and one-line descriptions, NULL-terminated. */
struct cpumodel_info { const char *name, *desc; };
const struct cpumodel_info *cpumodel_list(void);

/* "GenuineIntel" etc. from leaf 0 into buf[13]. */
void cpuid_vendor(const struct kvm_cpuid2 *c, char buf[13]);
bool cpuid_is_amd(const struct kvm_cpuid2 *c);   /* AMD or Hygon */

#endif
