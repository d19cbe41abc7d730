/* `ember cpu`: print the guest CPU model a `--cpu` spec gives on this host:
 * vendor, family/model, feature flags, the CPUID leaves, and the MSRs that
 * will be saved and restored (and those KVM lists that will not, with
 * why). --json for scripts and tests. */
#include "cmd_cpu.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86/backend.h"
#include "arch/x86/cpufeat.h"
#include "arch/x86/cpuid.h"
#include "arch/x86/guestcpu.h"
#include "config.h"

static void usage(void)
{
	printf("usage: ember cpu [--cpu MODEL[,+FEAT,-FEAT...]] [--cpus N] [--json]\n"
	       "       ember cpu --list | --list-features\n"
	       "\n"
	       "Prints the guest CPU Ember gives `ember run --cpu MODEL` on this host: vendor,\n"
	       "family/model, feature flags, CPUID of vCPU 0, and the MSRs saved and restored.\n"
	       "\n"
	       "  --cpu SPEC       model and +/- features (default host)\n"
	       "  --cpus N         vCPUs, for the topology leaves (default 1)\n"
	       "  --json           JSON on stdout\n"
	       "  --list           the models\n"
	       "  --list-features  the feature names\n");
}

static int usage_err(const char *msg)
{
	fprintf(stderr, "ember: error: %s\n", msg);
	return EXIT_USAGE;
}

struct signature { unsigned family, model, stepping, raw; };

static struct signature cpu_signature(const struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *e = cpuid_entry(c, 1, 0);
	unsigned eax = e ? e->eax : 0;
	struct signature s = { .raw = eax, .stepping = eax & 0xf };
	unsigned fam = (eax >> 8) & 0xf, mod = (eax >> 4) & 0xf;
	s.family = fam == 0xf ? fam + ((eax >> 20) & 0xff) : fam;
	s.model = (fam == 0x6 || fam == 0xf) ? mod | (((eax >> 16) & 0xf) << 4) : mod;
	return s;
}

/* Creates a scratch VM and vCPU, gives it vCPU 0's CPUID, reads it back
 * (*c0: what the guest sees) and reads every MSR of the save list: proves
 * KVM accepts both. Returns a message or NULL. */
static const char *probe_on_vcpu(struct guest_cpu *g, int kvm_fd, unsigned ncpus, char *buf, size_t len,
				 struct kvm_cpuid2 **c0)
{
	const char *res = NULL;
	int vm = ioctl(kvm_fd, KVM_CREATE_VM, 0), vcpu = -1;
	struct kvm_msrs *m = NULL;
	if (vm < 0)
		return "KVM_CREATE_VM failed";
	if (guest_cpu_setup_vm(g, vm) || ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0 ||
	    (vcpu = ioctl(vm, KVM_CREATE_VCPU, 0)) < 0) {
		res = "creating a scratch vCPU failed";
		goto out;
	}
	int r = guest_cpu_setup_vcpu(g, vcpu, 0, ncpus);
	struct kvm_cpuid2 *want = cpuid_for_vcpu(g->model.cpuid, 0, ncpus);
	if (!r && want && !(*c0 = cpuid_effective(vcpu, want)))
		r = -errno;
	free(want);
	if (r || !*c0) {
		snprintf(buf, len, "KVM_SET_CPUID2/KVM_X86_SETUP_MCE: %s", strerror(r ? -r : ENOMEM));
		res = buf;
		goto out;
	}
	m = calloc(1, sizeof(*m) + g->msrs.n * sizeof(m->entries[0]));
	if (!m) {
		res = "out of memory";
		goto out;
	}
	m->nmsrs = g->msrs.n;
	for (unsigned i = 0; i < g->msrs.n; i++)
		m->entries[i].index = g->msrs.index[i];
	int got = ioctl(vcpu, KVM_GET_MSRS, m);
	if (got != (int)g->msrs.n) {
		snprintf(buf, len, "KVM_GET_MSRS read %d of %u MSRs (stopped at %#x)", got, g->msrs.n,
			 got >= 0 && got < (int)g->msrs.n ? g->msrs.index[got] : 0);
		res = buf;
	}
out:
	free(m);
	if (vcpu >= 0)
		close(vcpu);
	close(vm);
	return res;
}

static void print_text(struct guest_cpu *g, const struct kvm_cpuid2 *c, unsigned ncpus,
		       const char *backend, const char *probe_err)
{
	char vendor[13];
	cpuid_vendor(c, vendor);
	struct signature s = cpu_signature(c);
	printf("model:     %s%s%s%s\n", g->model.spec,
	       g->model.backend_masked[0] ? " (hides " : "", g->model.backend_masked,
	       g->model.backend_masked[0] ? " on this backend)" : "");
	printf("backend:   %s\n", backend);
	if (g->model.backend_forced[0])
		printf("forced:    %s shows the guest these although the model lacks them: %s\n", backend,
		       g->model.backend_forced);
	printf("vendor:    %s\n", vendor);
	printf("family:    %#x  model: %#x  stepping: %u  (signature %#010x)\n", s.family, s.model,
	       s.stepping, s.raw);
	printf("vCPUs:     %u\n", ncpus);
	printf("PMU:       %s\n", g->model.pmu ? "yes" : "no");
	printf("MCG_CAP:   %#llx\n", (unsigned long long)g->mcg_cap);
	printf("features:");
	for (int f = 0; f < F_COUNT; f++)
		if (cpuid_has(c, f))
			printf(" %s", cpu_features[f].name);
	printf("\n\nMSRs saved and restored (%u):\n", g->msrs.n);
	for (unsigned i = 0; i < g->msrs.n; i++)
		printf("  %#010x %s\n", g->msrs.index[i], msr_name(g->msrs.index[i]));
	printf("\nMSRs KVM lists that are not saved (%u):\n", g->dropped.n);
	struct msr_guest mg = { .cpuid = c, .pmu = g->model.pmu, .mcg_cap = g->mcg_cap };
	for (unsigned i = 0; i < g->dropped.n; i++) {
		const char *why = "";
		msr_saved(g->dropped.index[i], &mg, &why);
		const char *name = msr_name(g->dropped.index[i]);
		printf("  %#010x %s: %s\n", g->dropped.index[i], name ? name : "?", why);
	}
	printf("\nvCPU state: xsave %u bytes, sregs2 %s, xcrs %s, debugregs %s, vcpu events %s,\n"
	       "            TSC %d kHz, TSC offset attribute %s, nested state %s\n",
	       g->xsave_size, g->sregs2 ? "yes" : "no", g->xcrs ? "yes" : "no",
	       g->debugregs ? "yes" : "no", g->vcpu_events ? "yes" : "no", g->tsc_khz,
	       g->tsc_offset_attr ? "yes" : "no",
	       g->nested_state ? "yes" : "no (KVM_CAP_NESTED_STATE is 0)");
	printf("check:     %s\n", probe_err ? probe_err : "KVM accepts the CPUID and reads every saved MSR");
	printf("\nCPUID of vCPU 0 (leaf.subleaf: eax ebx ecx edx):\n");
	for (unsigned i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];
		printf("  %08x.%02x: %08x %08x %08x %08x\n", e->function, e->index, e->eax, e->ebx,
		       e->ecx, e->edx);
	}
}

static json_object *msr_json(uint32_t index, const char *why)
{
	json_object *o = json_object_new_object();
	const char *name = msr_name(index);
	json_object_object_add(o, "index", json_object_new_int64(index));
	json_object_object_add(o, "name", json_object_new_string(name ? name : "?"));
	if (why)
		json_object_object_add(o, "why", json_object_new_string(why));
	return o;
}

static void print_json(struct guest_cpu *g, const struct kvm_cpuid2 *c, unsigned ncpus,
		       const char *backend, const char *probe_err)
{
	json_object *o = json_object_new_object();
	char vendor[13];
	cpuid_vendor(c, vendor);
	struct signature s = cpu_signature(c);
	json_object_object_add(o, "spec", json_object_new_string(g->model.spec));
	json_object_object_add(o, "model", json_object_new_string(g->model.base));
	json_object_object_add(o, "backend", json_object_new_string(backend));
	json_object_object_add(o, "backend_masked", json_object_new_string(g->model.backend_masked));
	json_object_object_add(o, "backend_forced", json_object_new_string(g->model.backend_forced));
	json_object_object_add(o, "vendor", json_object_new_string(vendor));
	json_object_object_add(o, "family", json_object_new_int(s.family));
	json_object_object_add(o, "model_number", json_object_new_int(s.model));
	json_object_object_add(o, "stepping", json_object_new_int(s.stepping));
	json_object_object_add(o, "vcpus", json_object_new_int(ncpus));
	json_object_object_add(o, "pmu", json_object_new_boolean(g->model.pmu));
	json_object_object_add(o, "mcg_cap", json_object_new_int64((int64_t)g->mcg_cap));
	json_object *feats = json_object_new_array();
	for (int f = 0; f < F_COUNT; f++)
		if (cpuid_has(c, f))
			json_object_array_add(feats, json_object_new_string(cpu_features[f].name));
	json_object_object_add(o, "features", feats);
	json_object *leaves = json_object_new_array();
	for (unsigned i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];
		json_object *l = json_object_new_object();
		json_object_object_add(l, "function", json_object_new_int64(e->function));
		json_object_object_add(l, "index", json_object_new_int64(e->index));
		json_object_object_add(l, "indexed", json_object_new_boolean(
			e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX));
		json_object_object_add(l, "eax", json_object_new_int64(e->eax));
		json_object_object_add(l, "ebx", json_object_new_int64(e->ebx));
		json_object_object_add(l, "ecx", json_object_new_int64(e->ecx));
		json_object_object_add(l, "edx", json_object_new_int64(e->edx));
		json_object_array_add(leaves, l);
	}
	json_object_object_add(o, "cpuid", leaves);
	json_object *msrs = json_object_new_array();
	for (unsigned i = 0; i < g->msrs.n; i++)
		json_object_array_add(msrs, msr_json(g->msrs.index[i], NULL));
	json_object_object_add(o, "msrs", msrs);
	json_object *dropped = json_object_new_array();
	struct msr_guest mg = { .cpuid = c, .pmu = g->model.pmu, .mcg_cap = g->mcg_cap };
	for (unsigned i = 0; i < g->dropped.n; i++) {
		const char *why = "";
		msr_saved(g->dropped.index[i], &mg, &why);
		json_object_array_add(dropped, msr_json(g->dropped.index[i], why));
	}
	json_object_object_add(o, "msrs_not_saved", dropped);
	json_object *k = json_object_new_object();
	json_object_object_add(k, "xsave_size", json_object_new_int(g->xsave_size));
	json_object_object_add(k, "sregs2", json_object_new_boolean(g->sregs2));
	json_object_object_add(k, "xcrs", json_object_new_boolean(g->xcrs));
	json_object_object_add(k, "debugregs", json_object_new_boolean(g->debugregs));
	json_object_object_add(k, "vcpu_events", json_object_new_boolean(g->vcpu_events));
	json_object_object_add(k, "tsc_khz", json_object_new_int(g->tsc_khz));
	json_object_object_add(k, "tsc_offset_attr", json_object_new_boolean(g->tsc_offset_attr));
	json_object_object_add(k, "nested_state", json_object_new_boolean(g->nested_state));
	json_object_object_add(o, "kvm", k);
	json_object_object_add(o, "check", probe_err ? json_object_new_string(probe_err) :
				  json_object_new_string("ok"));
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

enum { OPT_CPU = 0x100, OPT_CPUS, OPT_JSON, OPT_LIST, OPT_LIST_FEATURES };

int cmd_cpu(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cpu", required_argument, NULL, OPT_CPU },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "list", no_argument, NULL, OPT_LIST },
		{ "list-features", no_argument, NULL, OPT_LIST_FEATURES },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *spec = "host";
	unsigned ncpus = 1;
	bool json = false;
	char err[512];
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_CPU:
			if (cpumodel_check_spec(optarg, err, sizeof(err)))
				return usage_err(err);
			spec = optarg;
			break;
		case OPT_CPUS:
			if (parse_uint(optarg, 1, 4096, &ncpus))
				return usage_err("--cpus: must be a number from 1");
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_LIST:
			for (const struct cpumodel_info *m = cpumodel_list(); m->name; m++)
				printf("%-12s %s\n", m->name, m->desc);
			return 0;
		case OPT_LIST_FEATURES: {
			static const char *const regs[] = { "EAX", "EBX", "ECX", "EDX" };
			for (int f = 0; f < F_COUNT; f++)
				printf("%-22s CPUID %#x.%u %s[%u]\n", cpu_features[f].name, cpu_features[f].leaf,
				       cpu_features[f].subleaf, regs[cpu_features[f].reg & 3], cpu_features[f].bit);
			printf("%-22s (not a CPUID bit) the guest has a PMU\n", "pmu");
			return 0;
		}
		case 'h':
			usage();
			return 0;
		case ':':
			snprintf(err, sizeof(err), "%s needs a value", argv[optind - 1]);
			return usage_err(err);
		default:
			snprintf(err, sizeof(err), "unknown option %s (see ember cpu --help)", argv[optind - 1]);
			return usage_err(err);
		}
	}
	if (optind < argc) {
		snprintf(err, sizeof(err), "unexpected argument %s (see ember cpu --help)", argv[optind]);
		return usage_err(err);
	}
	int kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		fprintf(stderr, "ember: error: /dev/kvm: %s (is KVM enabled and do you have access?)\n",
			strerror(errno));
		return EXIT_VMM_ERROR;
	}
	const char *backend = kvm_backend_name();
	struct guest_cpu g;
	int r = guest_cpu_init(&g, kvm_fd, backend, spec, err, sizeof(err));
	if (r) {
		close(kvm_fd);
		if (r == -EINVAL)
			return usage_err(err);
		fprintf(stderr, "ember: error: %s\n", err);
		return EXIT_VMM_ERROR;
	}
	char pbuf[256];
	struct kvm_cpuid2 *c0 = NULL;
	const char *probe_err = probe_on_vcpu(&g, kvm_fd, ncpus, pbuf, sizeof(pbuf), &c0);
	if (c0) {
		if (json)
			print_json(&g, c0, ncpus, backend, probe_err);
		else
			print_text(&g, c0, ncpus, backend, probe_err);
	}
	free(c0);
	guest_cpu_free(&g);
	close(kvm_fd);
	if (!c0)
		return EXIT_VMM_ERROR;
	return probe_err ? EXIT_VMM_ERROR : 0;
}
