/* The `make run` demo: every AP says it is up, the BSP greets and powers the
 * VM off through ACPI (Ember exits 0). */
#include "kit.h"

static volatile long aps_up;

void ap_main(int cpu)
{
	printf("cpu %d up\n", cpu);
	atomic_inc(&aps_up);
}

void kmain(void)
{
	int n = smp_cpus();
	if (!wait_until_ge(&aps_up, n - 1, 5000))
		printf("only %ld of %d APs came up\n", (long)aps_up, n - 1);
	uint64_t mib = (e820_ram_total() + MiB / 2) / MiB;
	printf("Hello from the Ember guest kit on %d vCPUs, %lu MiB RAM\n", n, (unsigned long)mib);
	poweroff();
}
