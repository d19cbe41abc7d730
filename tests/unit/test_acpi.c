/* Unit tests for the ACPI table builder: build into guest RAM, then parse
 * the tables back from guest memory the way a guest would, by byte offsets
 * from the spec rather than through the builder's own structs. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "mem.h"

#define RAM_SIZE       (64 * MiB)
#define SCAN_START     0xe0000ULL
#define SCAN_END       0x100000ULL
#define HDR_LEN        36
#define MAX_SPANS      16

struct spans {
	uint64_t start[MAX_SPANS], end[MAX_SPANS];
	unsigned n;
};

struct parsed {
	uint64_t rsdp, xsdt, rsdt, fadt, facs, dsdt, madt, mcfg;
	unsigned nlapic, nx2apic;
	struct spans spans;
};

static struct guest_mem *M;

static const uint8_t *gp(uint64_t gpa, uint64_t len)
{
	const uint8_t *p = mem_ptr(M, gpa, len);

	assert_non_null(p);
	return p;
}

static uint8_t rd8(uint64_t gpa)
{
	return *gp(gpa, 1);
}

static uint16_t rd16(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, gp(gpa, 2), 2);
	return v;
}

static uint32_t rd32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, gp(gpa, 4), 4);
	return v;
}

static uint64_t rd64(uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, gp(gpa, 8), 8);
	return v;
}

static uint8_t sum(uint64_t gpa, uint64_t len)
{
	const uint8_t *p = gp(gpa, len);
	uint8_t s = 0;

	for (uint64_t i = 0; i < len; i++)
		s += p[i];
	return s;
}

static bool sig_is(uint64_t gpa, const char *sig)
{
	return memcmp(gp(gpa, strlen(sig)), sig, strlen(sig)) == 0;
}

static void span_add(struct spans *s, uint64_t start, uint64_t len)
{
	assert_true(s->n < MAX_SPANS);
	assert_true(start >= LAYOUT_BIOS_START);
	assert_true(start + len <= LAYOUT_BIOS_END);
	s->start[s->n] = start;
	s->end[s->n] = start + len;
	s->n++;
}

/* No two structures may overlap. */
static void spans_check(const struct spans *s)
{
	for (unsigned i = 0; i < s->n; i++)
		for (unsigned j = i + 1; j < s->n; j++)
			assert_true(s->end[i] <= s->start[j] || s->end[j] <= s->start[i]);
}

static int setup(void **state)
{
	static struct guest_mem mem;

	assert_int_equal(mem_create(&mem, RAM_SIZE), 0);
	M = &mem;
	*state = M;
	return 0;
}

static int teardown(void **state)
{
	mem_destroy(M);
	M = NULL;
	return 0;
}

/* What a guest does without a boot-protocol hint: scan the BIOS area. */
static uint64_t scan_rsdp(void)
{
	for (uint64_t gpa = SCAN_START; gpa < SCAN_END; gpa += 16)
		if (sig_is(gpa, "RSD PTR ") && sum(gpa, 20) == 0)
			return gpa;
	return 0;
}

/* Common header checks; returns the table length. */
static uint32_t check_table(struct parsed *p, uint64_t gpa, const char *sig)
{
	uint32_t len;

	assert_true(sig_is(gpa, sig));
	len = rd32(gpa + 4);
	assert_true(len >= HDR_LEN);
	span_add(&p->spans, gpa, len);
	assert_int_equal(sum(gpa, len), 0);
	assert_memory_equal(gp(gpa + 10, 6), "EMBER ", 6);
	assert_memory_equal(gp(gpa + 16, 8), "EMBERVM ", 8);
	return len;
}

static void check_rsdp(struct parsed *p, uint64_t expect)
{
	p->rsdp = scan_rsdp();
	assert_int_equal(p->rsdp, expect);
	assert_int_equal(p->rsdp % 16, 0);
	span_add(&p->spans, p->rsdp, 36);
	assert_memory_equal(gp(p->rsdp + 9, 6), "EMBER ", 6);
	assert_int_equal(rd8(p->rsdp + 15), 2);                 /* revision */
	assert_int_equal(rd32(p->rsdp + 20), 36);               /* length */
	assert_int_equal(sum(p->rsdp, 36), 0);                  /* extended */
	p->rsdt = rd32(p->rsdp + 16);
	p->xsdt = rd64(p->rsdp + 24);
}

static void root_entry(struct parsed *p, uint64_t table)
{
	if (sig_is(table, "FACP")) {
		assert_int_equal(p->fadt, 0);
		p->fadt = table;
	} else if (sig_is(table, "APIC")) {
		assert_int_equal(p->madt, 0);
		p->madt = table;
	} else if (sig_is(table, "MCFG")) {
		assert_int_equal(p->mcfg, 0);
		p->mcfg = table;
	} else {
		fail_msg("unexpected table %.4s", (const char *)gp(table, 4));
	}
}

/* RSDT and XSDT list the same tables, in the same order. */
static void check_roots(struct parsed *p, bool ecam)
{
	uint32_t xlen = check_table(p, p->xsdt, "XSDT");
	uint32_t rlen = check_table(p, p->rsdt, "RSDT");
	unsigned n = (xlen - HDR_LEN) / 8;

	assert_int_equal((xlen - HDR_LEN) % 8, 0);
	assert_int_equal((rlen - HDR_LEN) % 4, 0);
	assert_int_equal((rlen - HDR_LEN) / 4, n);
	assert_int_equal(n, ecam ? 3 : 2);
	for (unsigned i = 0; i < n; i++) {
		uint64_t x = rd64(p->xsdt + HDR_LEN + 8 * i);

		assert_int_equal(rd32(p->rsdt + HDR_LEN + 4 * i), x);
		root_entry(p, x);
	}
	assert_int_not_equal(p->fadt, 0);
	assert_int_not_equal(p->madt, 0);
	assert_int_equal(p->mcfg != 0, ecam);
}

/* A System I/O generic address structure at gas. */
static void check_gas(uint64_t gas, uint16_t port, unsigned bits)
{
	assert_int_equal(rd8(gas), 1);
	assert_int_equal(rd8(gas + 1), bits);
	assert_int_equal(rd8(gas + 2), 0);
	assert_int_equal(rd64(gas + 4), port);
}

static void check_fadt(struct parsed *p)
{
	uint64_t f = p->fadt;
	uint32_t flags;

	assert_int_equal(check_table(p, f, "FACP"), 276);
	assert_int_equal(rd8(f + 8), 6);                        /* revision */
	p->facs = rd32(f + 36);
	p->dsdt = rd32(f + 40);
	assert_int_equal(rd64(f + 132), 0);                     /* X_FIRMWARE_CTRL unused */
	assert_int_equal(rd64(f + 140), p->dsdt);               /* X_DSDT */
	assert_int_equal(rd16(f + 46), IRQ_ACPI_SCI);           /* SCI_INT */
	assert_int_equal(rd32(f + 48), 0);                      /* SMI_CMD */
	assert_int_equal(rd32(f + 56), PORT_ACPI_PM1A_EVT);
	assert_int_equal(rd32(f + 60), 0);                      /* PM1b_EVT */
	assert_int_equal(rd32(f + 64), PORT_ACPI_PM1A_CNT);
	assert_int_equal(rd32(f + 68), 0);                      /* PM1b_CNT */
	assert_int_equal(rd32(f + 76), PORT_ACPI_PM_TMR);
	assert_int_equal(rd8(f + 88), 4);                       /* PM1_EVT_LEN */
	assert_int_equal(rd8(f + 89), 2);                       /* PM1_CNT_LEN */
	assert_int_equal(rd8(f + 91), 4);                       /* PM_TMR_LEN */
	assert_true(rd8(f + 45) <= 1);                          /* PM profile */
	/* IAPC_BOOT_ARCH: 8042 present, no VGA, MSI supported. */
	assert_int_equal(rd16(f + 109) & 0xe, 0x6);
	flags = rd32(f + 112);
	assert_true(flags & (1u << 0));                         /* WBINVD */
	assert_true(flags & (1u << 2));                         /* PROC_C1 */
	assert_false(flags & (1u << 4));                        /* fixed power button */
	assert_true(flags & (1u << 5));                         /* no sleep button */
	assert_true(flags & (1u << 8));                         /* TMR_VAL_EXT */
	assert_false(flags & (1u << 10));                       /* RESET_REG_SUP */
	assert_false(flags & (1u << 20));                       /* HW_REDUCED_ACPI */
	check_gas(f + 148, PORT_ACPI_PM1A_EVT, 32);
	check_gas(f + 172, PORT_ACPI_PM1A_CNT, 16);
	check_gas(f + 208, PORT_ACPI_PM_TMR, 32);
	assert_int_equal(rd64(f + 160 + 4), 0);                 /* X_PM1b_EVT */
}

static void check_facs(struct parsed *p)
{
	assert_int_equal(p->facs % 64, 0);
	assert_true(sig_is(p->facs, "FACS"));
	assert_int_equal(rd32(p->facs + 4), 64);
	assert_int_equal(rd8(p->facs + 32), 2);                 /* version */
	span_add(&p->spans, p->facs, 64);
}

/* The header and checksum; test_dsdt.c decodes the AML. */
static void check_dsdt(struct parsed *p)
{
	check_table(p, p->dsdt, "DSDT");
	assert_int_equal(rd8(p->dsdt + 8), 2);                  /* revision */
}

static void madt_iso(uint64_t e, unsigned *seen)
{
	uint8_t irq = rd8(e + 3);

	assert_int_equal(rd8(e + 1), 10);
	assert_int_equal(rd8(e + 2), 0);                /* ISA */
	if (irq == IRQ_ACPI_SCI) {
		assert_int_equal(rd32(e + 4), IRQ_ACPI_SCI);
		assert_int_equal(rd16(e + 8), 0xd);     /* level, active high */
	} else {
		fail_msg("unexpected override for IRQ %u", irq);
	}
	*seen |= 1u << irq;
}

static void madt_entry(struct parsed *p, uint64_t e, unsigned *ioapics, unsigned *isos,
		       unsigned *nmis)
{
	switch (rd8(e)) {
	case 0:
		assert_int_equal(rd8(e + 1), 8);
		assert_int_equal(p->nx2apic, 0);        /* xAPIC entries first */
		assert_int_equal(rd8(e + 2), p->nlapic);        /* UID */
		assert_int_equal(rd8(e + 3), p->nlapic);        /* APIC ID */
		assert_int_equal(rd32(e + 4) & 1, 1);
		p->nlapic++;
		break;
	case 9:
		assert_int_equal(rd8(e + 1), 16);
		assert_int_equal(rd32(e + 4), 255 + p->nx2apic);
		assert_int_equal(rd32(e + 8) & 1, 1);
		assert_int_equal(rd32(e + 12), 255 + p->nx2apic);
		p->nx2apic++;
		break;
	case 1:
		assert_int_equal(rd8(e + 1), 12);
		assert_int_equal(rd32(e + 4), LAYOUT_IOAPIC);
		assert_int_equal(rd32(e + 8), 0);       /* GSI base */
		(*ioapics)++;
		break;
	case 2:
		madt_iso(e, isos);
		break;
	case 4:
		assert_int_equal(rd8(e + 1), 6);
		assert_int_equal(rd8(e + 2), 0xff);
		assert_int_equal(rd8(e + 5), 1);        /* LINT1 */
		(*nmis)++;
		break;
	case 10:
		assert_int_equal(rd8(e + 1), 12);
		assert_int_equal(rd32(e + 4), 0xffffffff);
		assert_int_equal(rd8(e + 8), 1);
		break;
	default:
		fail_msg("unexpected MADT entry type %u", rd8(e));
	}
}

static void check_madt(struct parsed *p, unsigned ncpus)
{
	uint32_t len = check_table(p, p->madt, "APIC");
	unsigned ioapics = 0, isos = 0, nmis = 0;
	uint64_t e = p->madt + 44;

	assert_int_equal(rd32(p->madt + 36), LAYOUT_LAPIC);
	assert_int_equal(rd32(p->madt + 40) & 1, 1);            /* PCAT_COMPAT */
	while (e < p->madt + len) {
		assert_true(e + 2 <= p->madt + len);
		assert_true(rd8(e + 1) >= 2);
		assert_true(e + rd8(e + 1) <= p->madt + len);
		madt_entry(p, e, &ioapics, &isos, &nmis);
		e += rd8(e + 1);
	}
	assert_int_equal(e, p->madt + len);
	assert_int_equal(p->nlapic + p->nx2apic, ncpus);
	assert_int_equal(p->nlapic, ncpus < 255 ? ncpus : 255);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 1u << IRQ_ACPI_SCI);
	assert_int_equal(nmis, 1);
}

static void check_mcfg(struct parsed *p)
{
	assert_int_equal(check_table(p, p->mcfg, "MCFG"), 44 + 16);
	assert_int_equal(rd64(p->mcfg + 44), LAYOUT_PCI_ECAM);
	assert_int_equal(rd16(p->mcfg + 52), 0);                /* segment */
	assert_int_equal(rd8(p->mcfg + 54), 0);                 /* start bus */
	assert_int_equal(rd8(p->mcfg + 55), 0);                 /* end bus */
}

/* What Linux does without ACPI: look for "_MP_" on 16-byte boundaries in
 * the BIOS ROM area (and the last KiB of base memory, empty here). */
static uint64_t scan_mpf(void)
{
	uint64_t found = 0;

	for (uint64_t gpa = 0xf0000; gpa < SCAN_END; gpa += 16)
		if (sig_is(gpa, "_MP_") && sum(gpa, 16) == 0) {
			assert_int_equal(found, 0);
			found = gpa;
		}
	for (uint64_t gpa = 639 * KiB; gpa < 640 * KiB; gpa += 16)
		assert_false(sig_is(gpa, "_MP_"));
	return found;
}

/* ISA IRQ n on IOAPIC pin n (the SCI level, active high, as in the
 * MADT), no entry for the cascade, and each slot's INTA# on 16 + slot % 8. */
static void mp_ioint(uint64_t e, unsigned *isa, uint32_t *pci)
{
	uint8_t flags = rd8(e + 2), bus = rd8(e + 4), src = rd8(e + 5), pin = rd8(e + 7);

	assert_int_equal(rd8(e + 1), 0);                        /* INT */
	assert_int_equal(rd8(e + 6), ACPI_IOAPIC_ID);
	if (bus == 1) {
		assert_true(src < 16 && src != 2);
		assert_int_equal(pin, src);
		assert_int_equal(flags, src == IRQ_ACPI_SCI ? 0xd : 0);
		*isa |= 1u << src;
	} else {
		assert_int_equal(bus, 0);
		assert_int_equal(src & 3, 0);                   /* INTA# */
		assert_int_equal(pin, 16 + (src >> 2) % 8);
		assert_int_equal(flags, 0xd);                   /* level, active high */
		*pci |= 1u << (src >> 2);
	}
}

static void check_mptable(struct parsed *p, unsigned ncpus)
{
	uint64_t f = scan_mpf(), t;
	unsigned cpus = 0, buses = 0, ioapics = 0, isa = 0, lints = 0;
	uint32_t pci = 0;

	assert_int_not_equal(f, 0);
	span_add(&p->spans, f, 16);
	assert_int_equal(rd8(f + 8), 1);                        /* length: 16 bytes */
	assert_int_equal(rd8(f + 9), 4);                        /* MP spec 1.4 */
	assert_int_equal(rd32(f + 11) | rd8(f + 15), 0);        /* no default configuration */
	t = rd32(f + 4);
	assert_true(sig_is(t, "PCMP"));
	uint16_t len = rd16(t + 4);
	span_add(&p->spans, t, len);
	assert_int_equal(sum(t, len), 0);
	assert_int_equal(rd8(t + 6), 4);
	assert_int_equal(rd32(t + 36), LAYOUT_LAPIC);
	assert_int_equal(rd16(t + 40), 0);                      /* no extended table */
	uint64_t e = t + 44, end = t + len;
	for (unsigned i = 0; i < rd16(t + 34); i++) {
		assert_true(e < end);
		switch (rd8(e)) {
		case 0:
			assert_int_equal(rd8(e + 1), cpus);     /* APIC ID */
			assert_int_equal(rd8(e + 3), cpus ? 1 : 3);     /* enabled, BSP first */
			cpus++;
			e += 20;
			continue;
		case 1:
			assert_int_equal(rd8(e + 1), buses);
			assert_memory_equal(gp(e + 2, 6), buses ? "ISA   " : "PCI   ", 6);
			buses++;
			break;
		case 2:
			assert_int_equal(rd8(e + 1), ACPI_IOAPIC_ID);
			assert_int_equal(rd8(e + 3), 1);
			assert_int_equal(rd32(e + 4), LAYOUT_IOAPIC);
			ioapics++;
			break;
		case 3:
			mp_ioint(e, &isa, &pci);
			break;
		case 4:
			assert_int_equal(rd8(e + 1), lints ? 1 : 3);    /* ExtINT, then NMI */
			assert_int_equal(rd8(e + 6), 0xff);
			assert_int_equal(rd8(e + 7), lints);            /* LINT0, LINT1 */
			lints++;
			break;
		default:
			fail_msg("MP entry type %u", rd8(e));
		}
		e += 8;
	}
	assert_int_equal(e, end);
	assert_int_equal(cpus, ncpus < 255 ? ncpus : 255);
	assert_int_equal(buses, 2);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isa, 0xffff & ~(1u << 2));
	assert_int_equal(pci, UINT32_MAX);                      /* all 32 slots */
	assert_int_equal(lints, 2);
}

/* Build, then parse and check everything reachable from the RSDP. */
static void build_and_check(unsigned ncpus, bool ecam, struct parsed *p)
{
	struct acpi_config cfg = { .ncpus = ncpus, .pci_ecam = ecam };
	uint64_t rsdp = 0;

	memset(p, 0, sizeof(*p));
	assert_int_equal(acpi_build(M, &cfg, &rsdp), 0);
	check_rsdp(p, rsdp);
	check_roots(p, ecam);
	check_fadt(p);
	check_facs(p);
	check_dsdt(p);
	check_madt(p, ncpus);
	if (ecam)
		check_mcfg(p);
	check_mptable(p, ncpus);
	spans_check(&p->spans);
}

static void test_cpus1(void **state)
{
	struct parsed p;

	build_and_check(1, false, &p);
}

static void test_cpus1_ecam(void **state)
{
	struct parsed p;

	build_and_check(1, true, &p);
}

static void test_cpus4(void **state)
{
	struct parsed p;

	build_and_check(4, false, &p);
}

static void test_cpus4_ecam(void **state)
{
	struct parsed p;

	build_and_check(4, true, &p);
}

/* Rebuilding with fewer features leaves no stale MCFG reachable. */
static void test_rebuild(void **state)
{
	struct acpi_config cfg = { .ncpus = 2, .pci_ecam = true };
	struct parsed p;
	uint64_t rsdp;

	assert_int_equal(acpi_build(M, &cfg, &rsdp), 0);
	build_and_check(2, false, &p);
	assert_int_equal(p.mcfg, 0);
}

static void test_cpus255(void **state)
{
	struct parsed p;

	build_and_check(255, true, &p);
	assert_int_equal(p.nx2apic, 0);
}

/* APIC IDs from 255 up need x2APIC entries. */
static void test_cpus300_x2apic(void **state)
{
	struct parsed p;

	build_and_check(300, true, &p);
	assert_int_equal(p.nlapic, 255);
	assert_int_equal(p.nx2apic, 45);
}

static void fill(uint64_t gpa, uint64_t len, uint8_t v)
{
	uint8_t *b = mem_ptr(M, gpa, len);

	assert_non_null(b);
	memset(b, v, len);
}

static void assert_filled(uint64_t gpa, uint64_t len, uint8_t v)
{
	const uint8_t *b = gp(gpa, len);

	for (uint64_t i = 0; i < len; i++)
		if (b[i] != v)
			fail_msg("byte at %#llx changed", (unsigned long long)(gpa + i));
}

static int build(unsigned ncpus, bool ecam)
{
	struct acpi_config cfg = { .ncpus = ncpus, .pci_ecam = ecam };
	uint64_t rsdp = 0x1234;
	int err = acpi_build(M, &cfg, &rsdp);

	if (err)
		assert_int_equal(rsdp, 0x1234);         /* untouched on error */
	return err;
}

/* Failing builds leave guest RAM as it was. */
static void test_enospc_untouched(void **state)
{
	uint64_t len = LAYOUT_BIOS_END - LAYOUT_BIOS_START;

	fill(LAYOUT_BIOS_START, len, 0xa5);
	assert_int_equal(build(UINT_MAX, true), -ENOSPC);
	assert_int_equal(build(UINT_MAX - 1, false), -ENOSPC);
	assert_int_equal(build(100000, false), -ENOSPC);
	assert_filled(LAYOUT_BIOS_START, len, 0xa5);
}

/* The largest vCPU count that fits does fit, exactly, and one more fails
 * cleanly; nothing outside the BIOS area is touched either way. */
static void test_enospc_boundary(void **state)
{
	unsigned lo = 255, hi = 100000;        /* lo fits, hi does not */
	struct parsed p;

	fill(LAYOUT_BIOS_START - 4 * KiB, 4 * KiB, 0x5a);
	fill(LAYOUT_BIOS_END, 4 * KiB, 0x5a);
	while (hi - lo > 1) {
		unsigned mid = lo + (hi - lo) / 2;
		int err = build(mid, true);

		assert_true(err == 0 || err == -ENOSPC);
		if (err)
			hi = mid;
		else
			lo = mid;
	}
	build_and_check(lo, true, &p);
	assert_int_equal(build(lo + 1, true), -ENOSPC);
	/* 128 KiB holds 4096 vCPUs' x2APIC entries (16 bytes each) easily. */
	assert_true(lo >= 4096);
	assert_filled(LAYOUT_BIOS_START - 4 * KiB, 4 * KiB, 0x5a);
	assert_filled(LAYOUT_BIOS_END, 4 * KiB, 0x5a);
}

static void test_zero_cpus(void **state)
{
	assert_int_equal(build(0, false), -EINVAL);
}

/* Guest RAM too small to hold the BIOS area. */
static void test_not_ram(void **state)
{
	struct guest_mem small;
	struct acpi_config cfg = { .ncpus = 1 };
	uint64_t rsdp;

	assert_int_equal(mem_create(&small, 512 * KiB), 0);
	assert_int_equal(acpi_build(&small, &cfg, &rsdp), -EFAULT);
	mem_destroy(&small);
}

/* The waking vector an S3 resume reads back: found through RSDP -> XSDT
 * -> FACP -> FACS as the guest left it, and nothing when the chain is
 * broken. (test_dsdt.c checks \_S3.) */
static void test_s3_waking_vector(void **state)
{
	struct parsed p;
	build_and_check(2, false, &p);

	uint32_t vec = 1, want = 0x1000;
	assert_int_equal(acpi_read_waking_vector(M, p.rsdp, &vec), 0);
	assert_int_equal(vec, 0);                       /* none yet */
	assert_int_equal(mem_write(M, p.facs + 12, &want, 4), 0);
	assert_int_equal(acpi_read_waking_vector(M, p.rsdp, &vec), 0);
	assert_int_equal(vec, 0x1000);
	/* A FACS without its signature, a FADT pointing nowhere, no RSDP. */
	assert_int_equal(mem_write(M, p.facs, "XXXX", 4), 0);
	assert_int_equal(acpi_read_waking_vector(M, p.rsdp, &vec), -ENOENT);
	uint32_t far = 0xfffffff0;
	assert_int_equal(mem_write(M, p.fadt + 36, &far, 4), 0);
	assert_int_equal(acpi_read_waking_vector(M, p.rsdp, &vec), -ENOENT);
	assert_int_equal(acpi_read_waking_vector(M, p.rsdp + 16, &vec), -ENOENT);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_cpus1),
		T(test_cpus1_ecam),
		T(test_cpus4),
		T(test_cpus4_ecam),
		T(test_rebuild),
		T(test_cpus255),
		T(test_cpus300_x2apic),
		T(test_enospc_untouched),
		T(test_enospc_boundary),
		T(test_zero_cpus),
		T(test_not_ram),
		T(test_s3_waking_vector),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
