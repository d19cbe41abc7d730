/* The cost of a port-I/O exit round trip: OUT then IN of pc-testdev's
 * scratch register (port 0xe0), each an exit to the VMM. Prints
 * "pio_roundtrip_ns=N" (one OUT+IN pair, averaged) for bench/kut.sh; the
 * check is that every value reads back. */
#include "kit.h"

#define ROUNDS 200

int kmain(int argc, char **argv)
{
	bool ok = true;
	tsc_khz();
	uint64_t t0 = rdtsc();
	for (uint32_t i = 0; i < ROUNDS; i++) {
		outl(0xe0, i * 0x01010101u);
		if (inl(0xe0) != i * 0x01010101u)
			ok = false;
	}
	uint64_t t1 = rdtsc();
	report(ok, "%d values written to port 0xe0 read back", ROUNDS);
	printf("pio_roundtrip_ns=%u\n", (uint32_t)(tsc_to_ns(t1 - t0) / ROUNDS));
	return report_summary();
}
