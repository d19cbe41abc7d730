/* The local APIC in xAPIC mode (MMIO at the MADT's address, mapped
 * uncached by the kit) and the MSRs next to it. */
#include "kit_internal.h"

static volatile uint32_t *reg(uint32_t r)
{
	return (volatile uint32_t *)(uintptr_t)(acpi_lapic_phys() + r);
}

uint32_t apic_read(uint32_t r) { return *reg(r); }
void apic_write(uint32_t r, uint32_t v) { *reg(r) = v; }
uint32_t apic_id(void) { return apic_read(APIC_ID) >> 24; }
