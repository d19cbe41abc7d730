/* kit_start: the C entry of every CPU (from entry.S, on its own stack). The
 * BSP reads boot_params and ACPI, builds the GDT/IDT and page tables, then
 * releases the APs; every CPU loads them and goes to kmain()/ap_main().
 * Booted by multiboot, only the BSP comes here at first: it wakes the APs
 * (INIT/SIPI) just before kmain(). */
#include "kit_internal.h"

extern volatile long kit_online;
static volatile long kit_ready;

__attribute__((weak)) void ap_main(int cpu) {}

noreturn void kit_start(int cpu, uint64_t boot_params);
noreturn void kit_start(int cpu, uint64_t boot_params)
{
	if (cpu == 0) {
		/* A BIOS (QEMU -M pc, Ember's --bios-state) leaves the 8259s
		 * open with the PIT on IRQ 0 at vector 8: mask them, as
		 * kvm-unit-tests does. The kit uses the LAPIC and IOAPIC. */
		outb(0x21, 0xff);
		outb(0xa1, 0xff);
		desc_init_bsp();
		smp_init_time();
		boot_init(boot_params);
		acpi_init();
		smp_calibrate_tsc();
		paging_init();
		barrier();
		kit_ready = 1;
	} else {
		while (!kit_ready)
			cpu_relax();
	}
	/* Kernel code runs on U=1 pages: make sure SMEP/SMAP are off. */
	uint64_t cr4 = read_cr4();
	if (cr4 & (CR4_SMEP | CR4_SMAP))
		write_cr4(cr4 & ~(CR4_SMEP | CR4_SMAP));
	paging_load();
	desc_init_cpu(cpu);
	kit_percpu[cpu].apic_id = cpuid(1).ebx >> 24;
	atomic_inc(&kit_online);
	if (cpu == 0) {
		if (kit_mb_zero_page)
			kit_mb_start_aps();
		kmain();
		report_summary();
	}
	ap_main(cpu);
	halt_forever();
}
