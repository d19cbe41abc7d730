/* The cost of a port-I/O exit round trip: OUT then IN of pc-testdev's
 * scratch register (port 0xe0), each an exit to the VMM. Timed in batches
 * (batches=N on the command line, default 15, at most 200) of ROUNDS pairs;
 * prints "pio_roundtrip_ns=N" (the median batch's average per OUT+IN pair)
 * and "pio_roundtrip_min_ns=N" (the best batch) for bench/kut.sh: on a
 * shared host a batch can wait for a CPU. The check is that every value
 * reads back. Needs pc-testdev (--pc-testdev). */
#include "kit.h"

#define ROUNDS  100
#define BATCHES_MAX 200

void kmain(void)
{
	bool ok = true;
	uint64_t ns[BATCHES_MAX], n = 15;
	if (cmdline_get_u64("batches", &n) && (n < 1 || n > BATCHES_MAX))
		n = 15;
	int batches = (int)n;
	for (int b = 0; b < batches; b++) {
		uint64_t t0 = rdtsc();
		for (uint32_t i = 0; i < ROUNDS; i++) {
			uint32_t v = (i + (uint32_t)b * ROUNDS) * 0x01010101u;
			outl(0xe0, v);
			if (inl(0xe0) != v)
				ok = false;
		}
		ns[b] = (rdtsc() - t0) * 1000000 / (tsc_hz() / 1000) / ROUNDS;
	}
	for (int i = 1; i < batches; i++)          /* insertion sort */
		for (int j = i; j > 0 && ns[j - 1] > ns[j]; j--) {
			uint64_t t = ns[j];
			ns[j] = ns[j - 1];
			ns[j - 1] = t;
		}
	report(ok, "%d values written to port 0xe0 read back", ROUNDS * batches);
	printf("pio_roundtrip_ns=%lu\npio_roundtrip_min_ns=%lu\n", (unsigned long)ns[batches / 2],
	       (unsigned long)ns[0]);
}
