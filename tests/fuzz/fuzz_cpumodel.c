/* libFuzzer target: the --cpu grammar (MODEL[,+FEATURE,-FEATURE...]) and
 * the model it builds, as `ember run --cpu` and a restore (the spec comes
 * back in a stream's "vm" section) build it: cpumodel_build on recorded
 * hosts (tests/unit/cpu_fixture.h). Input: byte 0 picks the host (bits
 * 0-1: a rich Intel, a rich AMD, the kvm_pvm host; bit 2: KVM gives a
 * PMU; bit 3: the backend is kvm_pvm), the rest is the spec. A spec that
 * builds passes the command line's check too, gives a CPUID KVM supports,
 * lacks every feature it last removes, keeps what it last adds when
 * nothing is removed after, and builds the same twice. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/cpu_fixture.h"
#include "arch/x86/cpufeat.h"
#include "arch/x86/cpumodel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); abort(); } } while (0)

static struct kvm_cpuid2 *hosts[3];

/* The spec's items in order, as parse_spec splits them. */
static void check_flags(const char *spec, const struct kvm_cpuid2 *c)
{
	char buf[CPUMODEL_SPEC_MAX];
	snprintf(buf, sizeof(buf), "%s", spec);
	int last[F_COUNT];
	unsigned pos[F_COUNT], removal_at = 0, n = 0;
	memset(last, 0, sizeof(last));
	char *save = NULL;
	strtok_r(buf, ",", &save);
	for (char *t = strtok_r(NULL, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int f = cpufeat_lookup(t + 1);
		n++;
		if (t[0] == '-')
			removal_at = n;    /* -pmu too: it takes the PMU's leaf */
		if (f == F_NONE)
			continue;          /* "pmu" */
		last[f] = t[0] == '+' ? 1 : -1;
		pos[f] = n;
	}
	for (int f = 0; f < F_COUNT; f++) {
		if (last[f] < 0)
			CHECK(!cpuid_has(c, f));
		else if (last[f] > 0 && pos[f] > removal_at)
			CHECK(cpuid_has(c, f));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!hosts[0]) {
		hosts[0] = fx_rich(false);
		hosts[1] = fx_rich(true);
		hosts[2] = fx_pvm_host();
	}
	if (size < 1)
		return 0;
	/* Longer than any spec may be, to reach the length check. */
	char spec[CPUMODEL_SPEC_MAX + 64];
	size_t n = size - 1 < sizeof(spec) - 1 ? size - 1 : sizeof(spec) - 1;
	memcpy(spec, data + 1, n);
	spec[n] = '\0';
	struct cpu_host host = {
		.supported = hosts[(data[0] & 3) % 3],
		.pmu = data[0] & 4,
		.backend = data[0] & 8 ? "kvm_pvm" : (data[0] & 3) == 1 ? "kvm_amd" : "kvm_intel",
	};
	struct cpu_model m, again;
	char err[512] = "", err2[512];
	if (cpumodel_build(&m, spec, &host, err, sizeof(err))) {
		CHECK(err[0] != '\0');
		return 0;
	}
	CHECK(cpumodel_check_spec(spec, err2, sizeof(err2)) == 0);
	CHECK(!strcmp(m.spec, spec));
	CHECK(cpumodel_check_supported(m.cpuid, host.supported, err2, sizeof(err2)) == 0);
	CHECK(cpumodel_diff(m.cpuid, m.cpuid, err2, sizeof(err2)) == 0);
	CHECK(!m.pmu || host.pmu);
	check_flags(spec, m.cpuid);
	CHECK(cpumodel_build(&again, spec, &host, err2, sizeof(err2)) == 0);
	CHECK(again.pmu == m.pmu && again.cpuid->nent == m.cpuid->nent &&
	      !memcmp(again.cpuid->entries, m.cpuid->entries, m.cpuid->nent * sizeof(m.cpuid->entries[0])));
	cpumodel_free(&again);
	cpumodel_free(&m);
	return 0;
}
