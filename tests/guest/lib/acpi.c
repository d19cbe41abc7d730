/* ACPI: RSDP (from boot_params, else the BIOS area scan), XSDT/RSDT walk,
 * MADT (CPUs, LAPIC) and FADT (PM1a control port). Tables are read in
 * place; they stay mapped (first 2 MiB, or the 3-4 GiB hole). */
#include "kit_internal.h"

extern uint64_t kit_rsdp_hint;

struct rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt;
	uint32_t length;
	uint64_t xsdt;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

#define MAX_TABLES 64
#define MADT_LAPIC   0
#define MADT_X2APIC  9

static uint64_t rsdp_pa;
static int rsdp_rev;
static const struct acpi_sdt *tables[MAX_TABLES];
static int ntables;
static uint32_t cpu_apic_ids[KIT_MAX_CPUS];
static int ncpus;
static uint64_t lapic_pa = 0xfee00000;
static uint16_t pm1a_evt = 0x600;
static uint16_t pm1a_cnt = 0x604;
static uint16_t pm_tmr = 0x608;

bool acpi_checksum_ok(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += b[i];
	return sum == 0;
}

static bool rsdp_valid(const struct rsdp *r)
{
	return !memcmp(r->signature, "RSD PTR ", 8) && acpi_checksum_ok(r, 20);
}

static uint64_t find_rsdp(void)
{
	if (kit_rsdp_hint && rsdp_valid((const struct rsdp *)(uintptr_t)kit_rsdp_hint))
		return kit_rsdp_hint;
	if (kit_rsdp_hint)
		printf("# acpi: boot_params acpi_rsdp_addr %#lx holds no valid RSDP, scanning\n",
		       (unsigned long)kit_rsdp_hint);
	for (uint64_t a = 0xe0000; a < 0x100000; a += 16) {
		const uint64_t *q = (const uint64_t *)(uintptr_t)a;
		if (*q == 0x2052545020445352ull /* "RSD PTR " */ && rsdp_valid((const struct rsdp *)q))
			return a;
	}
	return 0;
}

static void add_table(uint64_t pa)
{
	if (!pa || pa >= 0x100000000ull || ntables == MAX_TABLES)
		return;
	const struct acpi_sdt *t = (const struct acpi_sdt *)(uintptr_t)pa;
	if (!acpi_checksum_ok(t, t->length))
		printf("# acpi: table %.4s at %#lx: bad checksum\n", t->signature, (unsigned long)pa);
	tables[ntables++] = t;
}

static void parse_madt(const struct acpi_sdt *madt)
{
	const uint8_t *p = (const uint8_t *)madt;
	uint32_t la;
	memcpy(&la, p + 36, 4);
	lapic_pa = la;
	for (uint32_t off = 44; off + 2 <= madt->length;) {
		uint8_t type = p[off], len = p[off + 1];
		if (len < 2 || off + len > madt->length)
			break;
		uint32_t flags, id;
		if (type == MADT_LAPIC && len >= 8) {
			memcpy(&flags, p + off + 4, 4);
			if ((flags & 3) && ncpus < KIT_MAX_CPUS)
				cpu_apic_ids[ncpus++] = p[off + 3];
		} else if (type == MADT_X2APIC && len >= 16) {
			memcpy(&id, p + off + 4, 4);
			memcpy(&flags, p + off + 8, 4);
			if ((flags & 3) && ncpus < KIT_MAX_CPUS)
				cpu_apic_ids[ncpus++] = id;
		} else if (type == 5 && len >= 12) {
			memcpy(&lapic_pa, p + off + 4, 8);
		}
		off += len;
	}
}

/* A FADT port: the 32-bit block field at off, else the system-I/O X_ field
 * (a Generic Address Structure) at xoff; 0 when neither is there. */
static uint16_t fadt_port(const struct acpi_sdt *fadt, unsigned off, unsigned xoff)
{
	const uint8_t *p = (const uint8_t *)fadt;
	uint32_t port = 0;
	if (fadt->length >= off + 4)
		memcpy(&port, p + off, 4);
	if (!port && fadt->length >= xoff + 12 && p[xoff] == 1 /* system I/O */) {
		uint64_t x;
		memcpy(&x, p + xoff + 4, 8);
		port = (uint32_t)x;
	}
	return port < 0x10000 ? (uint16_t)port : 0;
}

static void parse_fadt(const struct acpi_sdt *fadt)
{
	uint16_t port;
	if ((port = fadt_port(fadt, 56, 148)))
		pm1a_evt = port;
	if ((port = fadt_port(fadt, 64, 172)))
		pm1a_cnt = port;
	if ((port = fadt_port(fadt, 76, 208)))
		pm_tmr = port;
}

void acpi_init(void)
{
	rsdp_pa = find_rsdp();
	if (!rsdp_pa) {
		puts("# acpi: no RSDP");
		return;
	}
	const struct rsdp *r = (const struct rsdp *)(uintptr_t)rsdp_pa;
	rsdp_rev = r->revision;
	const struct acpi_sdt *root = NULL;
	int esz = 4;
	if (r->revision >= 2 && r->xsdt) {
		if (!acpi_checksum_ok(r, r->length < sizeof(*r) ? sizeof(*r) : r->length))
			puts("# acpi: RSDP extended checksum bad");
		root = (const struct acpi_sdt *)(uintptr_t)r->xsdt;
		esz = 8;
	} else {
		root = (const struct acpi_sdt *)(uintptr_t)r->rsdt;
	}
	if (!root || memcmp(root->signature, esz == 8 ? "XSDT" : "RSDT", 4)) {
		puts("# acpi: bad root table");
		return;
	}
	if (!acpi_checksum_ok(root, root->length))
		printf("# acpi: %.4s: bad checksum\n", root->signature);
	const uint8_t *e = (const uint8_t *)root + sizeof(*root);
	int n = (int)((root->length - sizeof(*root)) / esz);
	for (int i = 0; i < n; i++) {
		uint64_t pa = 0;
		memcpy(&pa, e + (size_t)i * esz, esz);
		add_table(pa);
	}
	const struct acpi_sdt *madt = acpi_find_table("APIC", 0);
	if (madt)
		parse_madt(madt);
	const struct acpi_sdt *fadt = acpi_find_table("FACP", 0);
	if (fadt)
		parse_fadt(fadt);
}

uint64_t acpi_rsdp_phys(void) { return rsdp_pa; }
int acpi_rsdp_revision(void) { return rsdp_rev; }

const struct acpi_sdt *acpi_find_table(const char *sig, int n)
{
	for (int i = 0; i < ntables; i++)
		if (!memcmp(tables[i]->signature, sig, 4) && n-- == 0)
			return tables[i];
	return NULL;
}

int acpi_cpu_count(void) { return ncpus; }
uint32_t acpi_cpu_apic_id(int i) { return i >= 0 && i < ncpus ? cpu_apic_ids[i] : 0xffffffffu; }
uint64_t acpi_lapic_phys(void) { return lapic_pa; }
uint16_t acpi_pm1a_cnt_port(void) { return pm1a_cnt; }
uint16_t acpi_pm1a_evt_port(void) { return pm1a_evt; }
uint16_t acpi_pm_tmr_port(void) { return pm_tmr; }
