/* ACPI table builder: lays the tables out in a host copy of the BIOS area,
 * then copies them into guest RAM in one go. Section numbers are ACPI 6.5. */
#include "arch/x86/acpi.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "devices/acpi_pm.h"
#include "devices/fw_cfg.h"
#include "devices/pci.h"
#include "devices/rtc.h"
#include "devices/serial.h"

/* Ember only runs on x86 hosts, so native byte order is the little-endian
 * order ACPI wants and the packed structs below are written as they are. */

#define ACPI_OEM_ID            "EMBER "
#define ACPI_OEM_TABLE_ID      "EMBERVM "
#define ACPI_OEM_REVISION      1
#define ACPI_CREATOR_ID        "EMBR"
#define ACPI_CREATOR_REVISION  1

/* §5.2.5.3 Root System Description Pointer (RSDP) Structure */
struct acpi_rsdp {
	char signature[8];              /* "RSD PTR " */
	uint8_t checksum;               /* over the first 20 bytes (ACPI 1.0 part) */
	char oem_id[6];
	uint8_t revision;               /* 2: has the XSDT fields */
	uint32_t rsdt_address;
	uint32_t length;                /* of this structure */
	uint64_t xsdt_address;
	uint8_t extended_checksum;      /* over all of it */
	uint8_t reserved[3];
} __attribute__((packed));

/* §5.2.6 System Description Table Header */
struct acpi_header {
	char signature[4];
	uint32_t length;                /* of the whole table, header included */
	uint8_t revision;
	uint8_t checksum;               /* whole table sums to 0 */
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

/* §5.2.3.2 Generic Address Structure (GAS) */
struct acpi_gas {
	uint8_t space_id;               /* 1: system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;            /* 1 byte, 2 word, 3 dword, 4 qword */
	uint64_t address;
} __attribute__((packed));

#define ACPI_GAS_IO            1
#define ACPI_GAS_ACCESS_WORD   2
#define ACPI_GAS_ACCESS_DWORD  3

/* §5.2.9 Fixed ACPI Description Table (FADT), revision 6 layout */
struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;              /* was INT_MODEL in ACPI 1.0 */
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t fadt_minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_vendor_id;
} __attribute__((packed));

/* §5.2.9 Table "FADT Fixed Feature Flags" */
#define FADT_WBINVD            (1u << 0)
#define FADT_PROC_C1           (1u << 2)
#define FADT_PWR_BUTTON        (1u << 4)   /* set: no fixed-feature power button */
#define FADT_SLP_BUTTON        (1u << 5)   /* set: no fixed-feature sleep button */
#define FADT_TMR_VAL_EXT       (1u << 8)   /* PM timer is 32 bits, not 24 */
#define FADT_RESET_REG_SUP     (1u << 10)
#define FADT_HW_REDUCED_ACPI   (1u << 20)

/* §5.2.9.3 IA-PC Boot Architecture Flags */
#define BOOT_ARCH_8042         (1u << 1)
#define BOOT_ARCH_NO_VGA       (1u << 2)

/* P_LVLx_LAT above 100 (C2) / 1000 (C3) microseconds means "not supported". */
#define FADT_NO_C2_LAT         0x0fff
#define FADT_NO_C3_LAT         0x0fff

/* §5.2.10 Firmware ACPI Control Structure (FACS); no checksum. */
struct acpi_facs {
	char signature[4];              /* "FACS" */
	uint32_t length;
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version;
	uint8_t reserved0[3];
	uint32_t ospm_flags;
	uint8_t reserved1[24];
} __attribute__((packed));

#define FACS_ALIGN             64   /* §5.2.10: 64-byte aligned */

/* §5.2.12 Multiple APIC Description Table (MADT) */
struct acpi_madt {
	struct acpi_header h;
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));

#define MADT_PCAT_COMPAT       (1u << 0)   /* dual 8259s present too */
#define MADT_CPU_ENABLED       (1u << 0)

/* §5.2.12.2 Processor Local APIC Structure */
struct madt_lapic {
	uint8_t type;                   /* 0 */
	uint8_t length;                 /* 8 */
	uint8_t acpi_processor_uid;
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));

/* §5.2.12.3 I/O APIC Structure */
struct madt_ioapic {
	uint8_t type;                   /* 1 */
	uint8_t length;                 /* 12 */
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

/* §5.2.12.5 Interrupt Source Override Structure */
struct madt_iso {
	uint8_t type;                   /* 2 */
	uint8_t length;                 /* 10 */
	uint8_t bus;                    /* 0: ISA */
	uint8_t source;                 /* ISA IRQ */
	uint32_t gsi;
	uint16_t flags;                 /* MPS INTI flags */
} __attribute__((packed));

/* §5.2.12.7 Local APIC NMI Structure */
struct madt_lapic_nmi {
	uint8_t type;                   /* 4 */
	uint8_t length;                 /* 6 */
	uint8_t acpi_processor_uid;     /* 0xff: all processors */
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

/* §5.2.12.12 Processor Local x2APIC Structure */
struct madt_x2apic {
	uint8_t type;                   /* 9 */
	uint8_t length;                 /* 16 */
	uint16_t reserved;
	uint32_t x2apic_id;
	uint32_t flags;
	uint32_t acpi_processor_uid;
} __attribute__((packed));

/* §5.2.12.13 Local x2APIC NMI Structure */
struct madt_x2apic_nmi {
	uint8_t type;                   /* 10 */
	uint8_t length;                 /* 12 */
	uint16_t flags;
	uint32_t acpi_processor_uid;    /* 0xffffffff: all processors */
	uint8_t lint;
	uint8_t reserved[3];
} __attribute__((packed));

enum {
	MADT_TYPE_LAPIC = 0,
	MADT_TYPE_IOAPIC = 1,
	MADT_TYPE_ISO = 2,
	MADT_TYPE_LAPIC_NMI = 4,
	MADT_TYPE_X2APIC = 9,
	MADT_TYPE_X2APIC_NMI = 10,
};

/* xAPIC IDs stop at 254 (255 is the broadcast ID); §5.2.12.12 says CPUs
 * with IDs from 255 up are described with x2APIC structures instead. */
#define MADT_XAPIC_MAX_CPUS    255u

/* PCI Firmware Specification 3.0 §4.1.2 MCFG Table Description */
struct acpi_mcfg {
	struct acpi_header h;
	uint8_t reserved[8];
} __attribute__((packed));

struct mcfg_alloc {
	uint64_t base;                  /* ECAM base of segment, bus 0 */
	uint16_t segment;
	uint8_t start_bus;
	uint8_t end_bus;
	uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP size");
_Static_assert(sizeof(struct acpi_header) == 36, "SDT header size");
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS size");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 size");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT flags offset");
_Static_assert(offsetof(struct acpi_fadt, x_pm_tmr_blk) == 208, "FADT X_PM_TMR_BLK offset");
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS size");
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT size");
_Static_assert(sizeof(struct madt_lapic) == 8, "MADT LAPIC size");
_Static_assert(sizeof(struct madt_ioapic) == 12, "MADT IOAPIC size");
_Static_assert(sizeof(struct madt_iso) == 10, "MADT ISO size");
_Static_assert(sizeof(struct madt_lapic_nmi) == 6, "MADT LAPIC NMI size");
_Static_assert(sizeof(struct madt_x2apic) == 16, "MADT x2APIC size");
_Static_assert(sizeof(struct madt_x2apic_nmi) == 12, "MADT x2APIC NMI size");
_Static_assert(sizeof(struct acpi_mcfg) == 44, "MCFG size");
_Static_assert(sizeof(struct mcfg_alloc) == 16, "MCFG allocation size");

/* Ember's copy of [LAYOUT_BIOS_START, LAYOUT_BIOS_STUBS) while building
 * (the last 256 bytes of the BIOS area hold --bios-state's handlers). */
struct acpi_area {
	uint8_t *buf;
	uint64_t size;
	uint64_t used;                  /* next free offset; never above size */
};

/* Reserve len bytes aligned to align (a power of two). NULL when they do
 * not fit; the arithmetic cannot overflow since used <= size. */
static void *area_alloc(struct acpi_area *a, uint64_t len, uint64_t align, uint64_t *gpa)
{
	uint64_t off = (a->used + align - 1) & ~(align - 1);

	if (off > a->size || len > a->size - off)
		return NULL;
	a->used = off + len;
	*gpa = LAYOUT_BIOS_START + off;
	return a->buf + off;
}

static void *area_ptr(struct acpi_area *a, uint64_t gpa)
{
	return a->buf + (gpa - LAYOUT_BIOS_START);
}

uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += b[i];
	return (uint8_t)-sum;
}

static void header_init(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, sizeof(h->signature));
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, ACPI_OEM_ID, sizeof(h->oem_id));
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, sizeof(h->oem_table_id));
	h->oem_revision = ACPI_OEM_REVISION;
	memcpy(h->creator_id, ACPI_CREATOR_ID, sizeof(h->creator_id));
	h->creator_revision = ACPI_CREATOR_REVISION;
}

/* Last step for every table: its contents must be final by now. */
static void header_checksum(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = acpi_checksum(h, h->length);
}

/* Allocate a zeroed table of len bytes with its header filled in. */
static void *table_alloc(struct acpi_area *a, const char *sig, uint64_t len, uint8_t rev,
			 uint64_t *gpa)
{
	struct acpi_header *h = area_alloc(a, len, 8, gpa);

	if (h)
		header_init(h, sig, (uint32_t)len, rev);
	return h;
}

static int build_facs(struct acpi_area *a, uint64_t *gpa)
{
	struct acpi_facs *facs = area_alloc(a, sizeof(*facs), FACS_ALIGN, gpa);

	if (!facs)
		return -ENOSPC;
	memcpy(facs->signature, "FACS", sizeof(facs->signature));
	facs->length = sizeof(*facs);
	facs->version = 2;
	return 0;
}

/* ECAM has 1 MiB per bus: the buses the MCFG and PCI0's _CRS cover. */
#define PCI_LAST_BUS           ((uint8_t)(LAYOUT_PCI_ECAM_SIZE / MiB - 1))

/* ---- DSDT (§19 ASL, built by aml.c) -------------------------------------- */

/* What the host bridge decodes: its buses, its configuration ports (which
 * Linux drops from the windows) and the windows it assigns BARs from
 * (src/devices/pci.c). The ports of the platform devices (COM1, RTC,
 * fw_cfg) are left out, unlike a PC's bridge: no BAR may go there, since
 * Ember decodes I/O BARs only in their window. */
static struct aml *pci0_crs(void)
{
	return aml_name_decl("_CRS", aml_with(aml_resource_template(),
		aml_word_bus_number(0, PCI_LAST_BUS),
		aml_io(PCI_CF8_PORT, PCI_CF8_PORT, 1, PCI_CF8_PORTS),
		aml_word_io(PCI_IO_WINDOW, PCI_IO_WINDOW_END - 1),
		aml_dword_memory(LAYOUT_PCI_MMIO32, LAYOUT_PCI_MMIO32_END - 1),
		aml_qword_memory(LAYOUT_PCI_MMIO64, LAYOUT_PCI_MMIO64_END - 1)));
}

/* The link device of GSI IRQ_PCI_INTX_FIRST + i: "\_SB.GSIA" for i = 0. */
static void gsi_link_name(char name[10], unsigned i)
{
	memcpy(name, "\\_SB.GSI", 8);
	name[8] = (char)('A' + i);
	name[9] = '\0';
}

/* §6.2.13 _PRT: one entry per slot for INTA#, the only pin Ember's
 * functions have (PCI_INTERRUPT_PIN reads 1); INTB#-INTD# go nowhere. The
 * entries name link devices: a bare GSI there would mean level, active
 * low, and Ember drives the lines active high. */
static struct aml *pci0_prt(void)
{
	struct aml *prt = aml_package();
	for (unsigned slot = 0; slot < PCI_SLOTS; slot++) {
		char link[10];
		gsi_link_name(link, slot % IRQ_PCI_INTX_COUNT);
		prt = aml_append(prt, aml_with(aml_package(),
			aml_int((uint64_t)slot << 16 | 0xffff),  /* _ADR: the slot, any function */
			aml_int(0),                              /* INTA# */
			aml_name(link),
			aml_int(0)));                            /* the link's first interrupt */
	}
	return aml_name_decl("_PRT", prt);
}

static struct aml *pci0(void)
{
	return aml_with(aml_device("PCI0"),
		aml_name_decl("_HID", aml_eisaid("PNP0A08")),   /* PCI Express root bridge */
		aml_name_decl("_CID", aml_eisaid("PNP0A03")),   /* PCI root bridge */
		aml_name_decl("_SEG", aml_int(0)),
		aml_name_decl("_BBN", aml_int(0)),
		aml_name_decl("_UID", aml_int(0)),
		pci0_crs(),
		pci0_prt());
}

/* PCI interrupt link devices with a fixed GSI (one possible setting; _SRS
 * and _DIS do nothing), level, active high and shared, as vm_pci.c drives
 * them. Linux insists on an _SRS it can call. */
static struct aml *gsi_link(unsigned i)
{
	char path[10];
	gsi_link_name(path, i);
	unsigned gsi = IRQ_PCI_INTX_FIRST + i;
	return aml_with(aml_device(path + 5),           /* the "GSIx" segment */
		aml_name_decl("_HID", aml_eisaid("PNP0C0F")),
		aml_name_decl("_UID", aml_int(i)),
		aml_name_decl("_PRS", aml_with(aml_resource_template(),
					       aml_interrupt(AML_INTR_SHARED, gsi))),
		aml_name_decl("_CRS", aml_with(aml_resource_template(),
					       aml_interrupt(AML_INTR_SHARED, gsi))),
		aml_method("_DIS", 0),
		aml_method("_SRS", 1));
}
_Static_assert(IRQ_PCI_INTX_COUNT <= 26, "one letter per link device");

static struct aml *com1(void)
{
	return aml_with(aml_device("COM1"),
		aml_name_decl("_HID", aml_eisaid("PNP0501")),   /* 16550A */
		aml_name_decl("_UID", aml_int(1)),
		aml_name_decl("_CRS", aml_with(aml_resource_template(),
			aml_io(PORT_SERIAL_COM1, PORT_SERIAL_COM1, 1, SERIAL_PORTS),
			aml_irq_no_flags(IRQ_SERIAL_COM1))));
}

/* --rtc. No IRQ: Ember's RTC raises none (devices/rtc.h). */
static struct aml *rtc(void)
{
	return aml_with(aml_device("RTC"),
		aml_name_decl("_HID", aml_eisaid("PNP0B00")),   /* AT real-time clock */
		aml_name_decl("_CRS", aml_with(aml_resource_template(),
			aml_io(RTC_PORT, RTC_PORT, 1, RTC_PORT_LEN))));
}

/* --fw-cfg, as QEMU describes it (hidden from a user interface: _STA 0xb). */
static struct aml *fw_cfg(void)
{
	return aml_with(aml_device("FWCF"),
		aml_name_decl("_HID", aml_string("QEMU0002")),
		aml_name_decl("_STA", aml_int(0xb)),
		aml_name_decl("_CRS", aml_with(aml_resource_template(),
			aml_io(FW_CFG_PORT_SEL, FW_CFG_PORT_SEL, 1, FW_CFG_PORT_LEN))));
}

/* Motherboard resources (PNP0C02): the ECAM, which Linux wants reserved
 * here as well as in the e820 map. */
static struct aml *ecam_reservation(void)
{
	return aml_with(aml_device("MBRD"),
		aml_name_decl("_HID", aml_eisaid("PNP0C02")),
		aml_name_decl("_UID", aml_int(0)),
		aml_name_decl("_CRS", aml_with(aml_resource_template(),
			aml_memory32_fixed((uint32_t)LAYOUT_PCI_ECAM, (uint32_t)LAYOUT_PCI_ECAM_SIZE))));
}

/* Name (_Sx, Package (4) { SLP_TYPa, SLP_TYPb, 0, 0 }): the SLP_TYP the OS
 * writes into PM1a_CNT to enter that state (there is no PM1b, but it is
 * read). */
static struct aml *sleep_state(const char *name, unsigned slp_typ)
{
	return aml_name_decl(name, aml_with(aml_package(),
		aml_int(slp_typ), aml_int(slp_typ), aml_int(0), aml_int(0)));
}

static struct aml *dsdt_body(const struct acpi_config *cfg)
{
	struct aml *sb = aml_with(aml_scope("\\_SB"), pci0());
	for (unsigned i = 0; i < IRQ_PCI_INTX_COUNT; i++)
		sb = aml_append(sb, gsi_link(i));
	sb = aml_append(sb, com1());
	if (cfg->rtc)
		sb = aml_append(sb, rtc());
	if (cfg->fw_cfg)
		sb = aml_append(sb, fw_cfg());
	if (cfg->pci_ecam)
		sb = aml_append(sb, ecam_reservation());
	return aml_with(aml_new(), sb,
		sleep_state("_S5", ACPI_S5_SLP_TYP),
		sleep_state("_S3", ACPI_S3_SLP_TYP));
}

static int build_dsdt(struct acpi_area *a, const struct acpi_config *cfg, uint64_t *gpa)
{
	uint8_t *aml;
	size_t len;
	int err = aml_take(dsdt_body(cfg), &aml, &len);
	if (err)
		return err;
	/* Revision 2: AML integers are 64 bits wide. */
	struct acpi_header *h = table_alloc(a, "DSDT", sizeof(*h) + len, 2, gpa);
	if (h) {
		memcpy(h + 1, aml, len);
		header_checksum(h);
	}
	free(aml);
	return h ? 0 : -ENOSPC;
}

static struct acpi_gas gas_io(uint16_t port, unsigned len, uint8_t access_size)
{
	return (struct acpi_gas){
		.space_id = ACPI_GAS_IO,
		.bit_width = (uint8_t)(len * 8),
		.access_size = access_size,
		.address = port,
	};
}

/* The PM1a blocks and the PM timer of devices/acpi_pm.c; nothing else. */
static void fadt_pm_blocks(struct acpi_fadt *f)
{
	f->pm1a_evt_blk = PORT_ACPI_PM1A_EVT;
	f->pm1a_cnt_blk = PORT_ACPI_PM1A_CNT;
	f->pm_tmr_blk = PORT_ACPI_PM_TMR;
	f->pm1_evt_len = ACPI_PM1_EVT_LEN;
	f->pm1_cnt_len = ACPI_PM1_CNT_LEN;
	f->pm_tmr_len = ACPI_PM_TMR_LEN;
	f->x_pm1a_evt_blk = gas_io(PORT_ACPI_PM1A_EVT, ACPI_PM1_EVT_LEN, ACPI_GAS_ACCESS_WORD);
	f->x_pm1a_cnt_blk = gas_io(PORT_ACPI_PM1A_CNT, ACPI_PM1_CNT_LEN, ACPI_GAS_ACCESS_WORD);
	f->x_pm_tmr_blk = gas_io(PORT_ACPI_PM_TMR, ACPI_PM_TMR_LEN, ACPI_GAS_ACCESS_DWORD);
}

static int build_fadt(struct acpi_area *a, uint64_t facs, uint64_t dsdt, uint64_t *gpa)
{
	/* Revision 6 (ACPI 6.0 layout, minor version 0). */
	struct acpi_fadt *f = table_alloc(a, "FACP", sizeof(*f), 6, gpa);

	if (!f)
		return -ENOSPC;
	/* ACPI 6.0 5.2.9: when X_FIRMWARE_CTRL is set FIRMWARE_CTRL must be
	 * zero; the FACS is below 4 GiB, so use the 32-bit field that every
	 * parser (kvm-unit-tests' s3 too) reads, as QEMU does. Both DSDT
	 * widths are set, equal: ACPICA only complains when they differ. */
	f->firmware_ctrl = (uint32_t)facs;
	f->x_firmware_ctrl = 0;
	f->dsdt = (uint32_t)dsdt;
	f->x_dsdt = dsdt;
	f->preferred_pm_profile = 0;    /* unspecified */
	f->sci_int = IRQ_ACPI_SCI;
	/* SMI_CMD 0: no SMI, the machine is always in ACPI mode (SCI_EN
	 * reads as 1), so ACPI_ENABLE/ACPI_DISABLE stay 0 too. */
	f->smi_cmd = 0;
	fadt_pm_blocks(f);
	f->p_lvl2_lat = FADT_NO_C2_LAT;
	f->p_lvl3_lat = FADT_NO_C3_LAT;
	/* The i8042 is there (it is how Ember resets); there is no VGA.
	 * MSI works, so "MSI not supported" stays clear. */
	f->iapc_boot_arch = BOOT_ARCH_8042 | BOOT_ARCH_NO_VGA;
	/* PWR_BUTTON stays clear: acpi_pm implements the fixed-feature
	 * power button (PWRBTN_STS/EN), which is how "shutdown" reaches the
	 * guest; setting the bit would make Linux ignore it. No sleep button.
	 * No RESET_REG: Ember resets through the i8042 (0x64 <- 0xfe). */
	f->flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_TMR_VAL_EXT;
	f->fadt_minor_version = 0;
	header_checksum(&f->h);
	return 0;
}

static uint64_t madt_len(unsigned ncpus)
{
	uint64_t xapic = ncpus < MADT_XAPIC_MAX_CPUS ? ncpus : MADT_XAPIC_MAX_CPUS;
	uint64_t x2apic = ncpus - xapic;
	uint64_t len = sizeof(struct acpi_madt) + xapic * sizeof(struct madt_lapic) +
		       sizeof(struct madt_ioapic) + sizeof(struct madt_iso) +
		       sizeof(struct madt_lapic_nmi);

	if (x2apic)
		len += x2apic * sizeof(struct madt_x2apic) + sizeof(struct madt_x2apic_nmi);
	return len;
}

static uint8_t *put(uint8_t *p, const void *entry, size_t len)
{
	memcpy(p, entry, len);
	return p + len;
}

/* One entry per vCPU; APIC ID = ACPI processor UID = vCPU index. */
static uint8_t *madt_cpus(uint8_t *p, unsigned ncpus)
{
	for (unsigned i = 0; i < ncpus; i++) {
		if (i < MADT_XAPIC_MAX_CPUS) {
			struct madt_lapic e = {
				.type = MADT_TYPE_LAPIC, .length = sizeof(e),
				.acpi_processor_uid = (uint8_t)i, .apic_id = (uint8_t)i,
				.flags = MADT_CPU_ENABLED,
			};
			p = put(p, &e, sizeof(e));
		} else {
			struct madt_x2apic e = {
				.type = MADT_TYPE_X2APIC, .length = sizeof(e),
				.x2apic_id = i, .acpi_processor_uid = i,
				.flags = MADT_CPU_ENABLED,
			};
			p = put(p, &e, sizeof(e));
		}
	}
	return p;
}

static uint8_t *put_iso(uint8_t *p, uint8_t irq, uint32_t gsi, uint16_t flags)
{
	struct madt_iso e = {
		.type = MADT_TYPE_ISO, .length = sizeof(e),
		.bus = 0, .source = irq, .gsi = gsi, .flags = flags,
	};

	return put(p, &e, sizeof(e));
}

/* The IOAPIC, its ISA overrides and the NMI wiring. */
static uint8_t *madt_irq_routing(uint8_t *p, unsigned ncpus)
{
	struct madt_ioapic io = {
		.type = MADT_TYPE_IOAPIC, .length = sizeof(io),
		.ioapic_id = ACPI_IOAPIC_ID, .address = LAYOUT_IOAPIC, .gsi_base = 0,
	};
	struct madt_lapic_nmi nmi = {
		.type = MADT_TYPE_LAPIC_NMI, .length = sizeof(nmi),
		.acpi_processor_uid = 0xff, .flags = MPS_INTI_CONFORMS, .lint = 1,
	};

	p = put(p, &io, sizeof(io));
	/* No IRQ 0 -> GSI 2 override: KVM's default GSI routing delivers the
	 * in-kernel PIT on IOAPIC pin 0, so ISA IRQs stay identity-mapped. */
	/* The SCI is level-triggered; acpi_pm drives it active high. */
	p = put_iso(p, IRQ_ACPI_SCI, IRQ_ACPI_SCI, MPS_INTI_LEVEL | MPS_INTI_ACTIVE_HIGH);
	/* LINT1 is the NMI input on every local APIC. */
	p = put(p, &nmi, sizeof(nmi));
	if (ncpus > MADT_XAPIC_MAX_CPUS) {
		struct madt_x2apic_nmi xnmi = {
			.type = MADT_TYPE_X2APIC_NMI, .length = sizeof(xnmi),
			.flags = MPS_INTI_CONFORMS, .acpi_processor_uid = 0xffffffff, .lint = 1,
		};
		p = put(p, &xnmi, sizeof(xnmi));
	}
	return p;
}

static int build_madt(struct acpi_area *a, unsigned ncpus, uint64_t *gpa)
{
	/* Revision 4: the ACPI 6.0 MADT, to match the FADT. */
	struct acpi_madt *madt = table_alloc(a, "APIC", madt_len(ncpus), 4, gpa);
	uint8_t *p;

	if (!madt)
		return -ENOSPC;
	madt->lapic_address = (uint32_t)LAYOUT_LAPIC;
	madt->flags = MADT_PCAT_COMPAT;
	p = madt_cpus((uint8_t *)(madt + 1), ncpus);
	madt_irq_routing(p, ncpus);
	header_checksum(&madt->h);
	return 0;
}

static int build_mcfg(struct acpi_area *a, uint64_t *gpa)
{
	struct acpi_mcfg *mcfg = table_alloc(a, "MCFG", sizeof(*mcfg) + sizeof(struct mcfg_alloc),
					     1, gpa);
	struct mcfg_alloc e = {
		.base = LAYOUT_PCI_ECAM, .segment = 0, .start_bus = 0,
		.end_bus = PCI_LAST_BUS,
	};

	if (!mcfg)
		return -ENOSPC;
	put((uint8_t *)(mcfg + 1), &e, sizeof(e));
	header_checksum(&mcfg->h);
	return 0;
}

/* The MP table (for kernels booted without ACPI) shares the area, after
 * the ACPI tables and no lower than LAYOUT_MPTABLE_MIN, where Linux scans
 * for its floating pointer. */
static int build_mptable(struct acpi_area *a, unsigned ncpus)
{
	uint64_t min = LAYOUT_MPTABLE_MIN - LAYOUT_BIOS_START, gpa;
	if (a->used < min)
		a->used = min;
	void *p = area_alloc(a, mptable_size(ncpus), 16, &gpa);
	if (!p)
		return -ENOSPC;
	mptable_write(p, gpa, ncpus);
	return 0;
}

/* The tables the RSDT and XSDT point at (the FADT points at the rest). */
#define ACPI_MAX_ROOT_ENTRIES  3

struct acpi_root {
	uint64_t rsdp, xsdt, rsdt;
	uint64_t entries[ACPI_MAX_ROOT_ENTRIES];
	unsigned count;
};

/* Room for the RSDP first, so it lands at LAYOUT_BIOS_START where the scan
 * begins, then for the RSDT and XSDT, filled in once their entries exist. */
static int root_alloc(struct acpi_area *a, struct acpi_root *r, unsigned count)
{
	r->count = count;
	if (!area_alloc(a, sizeof(struct acpi_rsdp), 16, &r->rsdp))
		return -ENOSPC;
	if (!table_alloc(a, "XSDT", sizeof(struct acpi_header) + 8 * count, 1, &r->xsdt))
		return -ENOSPC;
	if (!table_alloc(a, "RSDT", sizeof(struct acpi_header) + 4 * count, 1, &r->rsdt))
		return -ENOSPC;
	return 0;
}

static void root_fill(struct acpi_area *a, const struct acpi_root *r)
{
	struct acpi_header *xsdt = area_ptr(a, r->xsdt);
	struct acpi_header *rsdt = area_ptr(a, r->rsdt);
	struct acpi_rsdp *rsdp = area_ptr(a, r->rsdp);

	for (unsigned i = 0; i < r->count; i++) {
		/* Every table is below 1 MiB, so 32-bit pointers do. */
		uint32_t ptr32 = (uint32_t)r->entries[i];

		memcpy((uint8_t *)(xsdt + 1) + 8 * i, &r->entries[i], 8);
		memcpy((uint8_t *)(rsdt + 1) + 4 * i, &ptr32, 4);
	}
	header_checksum(xsdt);
	header_checksum(rsdt);

	memcpy(rsdp->signature, "RSD PTR ", sizeof(rsdp->signature));
	memcpy(rsdp->oem_id, ACPI_OEM_ID, sizeof(rsdp->oem_id));
	rsdp->revision = 2;
	rsdp->rsdt_address = (uint32_t)r->rsdt;
	rsdp->length = sizeof(*rsdp);
	rsdp->xsdt_address = r->xsdt;
	/* The ACPI 1.0 checksum covers the first 20 bytes only. */
	rsdp->checksum = acpi_checksum(rsdp, offsetof(struct acpi_rsdp, length));
	rsdp->extended_checksum = acpi_checksum(rsdp, sizeof(*rsdp));
}

static int build_all(struct acpi_area *a, const struct acpi_config *cfg, uint64_t *rsdp_gpa)
{
	struct acpi_root r;
	uint64_t facs, dsdt;
	int err;

	err = root_alloc(a, &r, cfg->pci_ecam ? 3 : 2);
	if (!err)
		err = build_facs(a, &facs);
	if (!err)
		err = build_dsdt(a, cfg, &dsdt);
	if (!err)
		err = build_fadt(a, facs, dsdt, &r.entries[0]);
	if (!err)
		err = build_madt(a, cfg->ncpus, &r.entries[1]);
	if (!err && cfg->pci_ecam)
		err = build_mcfg(a, &r.entries[2]);
	if (!err)
		err = build_mptable(a, cfg->ncpus);
	if (err)
		return err;
	root_fill(a, &r);
	*rsdp_gpa = r.rsdp;
	return 0;
}

int acpi_build(const struct guest_mem *m, const struct acpi_config *cfg, uint64_t *rsdp_gpa)
{
	struct acpi_area a = { .size = LAYOUT_BIOS_STUBS - LAYOUT_BIOS_START };
	uint64_t rsdp;
	int err;

	if (!cfg->ncpus)
		return -EINVAL;
	a.buf = calloc(1, a.size);
	if (!a.buf)
		return -ENOMEM;
	/* Build everything first: on -ENOSPC guest RAM is left untouched. */
	err = build_all(&a, cfg, &rsdp);
	if (!err)
		err = mem_write(m, LAYOUT_BIOS_START, a.buf, a.used);
	free(a.buf);
	if (!err)
		*rsdp_gpa = rsdp;
	return err;
}

/* The firmware's side of S3 resume: the FACS the FADT points at, found the
 * way an OS finds it (RSDP -> XSDT or RSDT -> FACP -> FACS), through checked
 * reads: the guest owns these tables now and may have changed them. */
int acpi_read_waking_vector(const struct guest_mem *m, uint64_t rsdp_gpa, uint32_t *vector)
{
	struct acpi_rsdp rsdp;
	struct acpi_header root;
	if (mem_read(m, &rsdp, rsdp_gpa, sizeof(rsdp)) || memcmp(rsdp.signature, "RSD PTR ", 8))
		return -ENOENT;
	bool x = rsdp.revision >= 2 && rsdp.xsdt_address;
	uint64_t root_gpa = x ? rsdp.xsdt_address : rsdp.rsdt_address;
	unsigned esz = x ? 8 : 4;
	if (mem_read(m, &root, root_gpa, sizeof(root)) || root.length < sizeof(root))
		return -ENOENT;
	unsigned n = (root.length - sizeof(root)) / esz;
	for (unsigned i = 0; i < n && i < 64; i++) {
		uint64_t t = 0;
		char sig[4];
		if (mem_read(m, &t, root_gpa + sizeof(root) + (uint64_t)i * esz, esz) ||
		    mem_read(m, sig, t, 4) || memcmp(sig, "FACP", 4))
			continue;
		struct acpi_fadt f = { 0 };
		uint32_t len;
		if (mem_read(m, &len, t + 4, 4) || len < offsetof(struct acpi_fadt, dsdt))
			return -ENOENT;
		if (mem_read(m, &f, t, len < sizeof(f) ? len : sizeof(f)))
			return -ENOENT;
		uint64_t facs = len >= offsetof(struct acpi_fadt, x_dsdt) && f.x_firmware_ctrl ?
				f.x_firmware_ctrl : f.firmware_ctrl;
		struct acpi_facs fc;
		if (!facs || mem_read(m, &fc, facs, sizeof(fc)) || memcmp(fc.signature, "FACS", 4))
			return -ENOENT;
		*vector = fc.firmware_waking_vector;
		return 0;
	}
	return -ENOENT;
}
