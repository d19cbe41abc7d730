/* What the guest's clocks do across a pause of the VM (ember ctl pause /
 * resume). The TSC is calibrated against the ACPI PM timer, then a CPL3
 * loop reads the TSC for `seconds=N` (default 5) and keeps the largest step
 * between two reads: a host pause while it runs shows up as a step of the
 * pause's length when the TSC keeps counting through it. The PM timer is
 * read before and after the loop: both clocks must agree on the elapsed
 * time. The host side (tests/integration/test_control_clock.sh) decides
 * whether the step matches the pause it made. Prints:
 *   clock: measuring for N s
 *   clock: max_gap_ms=G at_ms=A tsc_ms=T pmtmr_ms=P
 */
#include "kit.h"

#define CALIBRATE_TICKS (ACPI_PM_TMR_HZ / 10)   /* 100 ms */

struct run {
	uint64_t duration;      /* in TSC ticks */
	uint64_t max_gap, at, elapsed;
};

/* At CPL3: native speed, so consecutive reads are ns apart unless the
 * vCPU was stopped in between. */
static long tsc_loop(void *arg)
{
	struct run *r = arg;
	uint64_t start = rdtsc(), prev = start, max = 0, at = 0;
	while (prev - start < r->duration) {
		uint64_t now = rdtsc();
		if (now - prev > max) {
			max = now - prev;
			at = prev - start;
		}
		prev = now;
	}
	r->max_gap = max;
	r->at = at;
	r->elapsed = prev - start;
	return 0;
}

/* TSC ticks per second, measured over 100 ms of the PM timer. */
static uint64_t calibrate(uint16_t tmr)
{
	uint32_t p0 = inl(tmr), p1;
	uint64_t t0 = rdtsc();
	do
		p1 = inl(tmr);
	while (p1 - p0 < CALIBRATE_TICKS);
	uint64_t t1 = rdtsc();
	return (t1 - t0) * ACPI_PM_TMR_HZ / (p1 - p0);
}

static uint64_t ms(uint64_t ticks, uint64_t hz)
{
	return ticks * 1000 / hz;
}

void kmain(void)
{
	uint64_t seconds = 5;
	cmdline_get_u64("seconds", &seconds);
	uint16_t tmr = acpi_pm_tmr_port();
	uint64_t hz = calibrate(tmr);
	printf("clock: TSC %lu kHz against the PM timer\n", (unsigned long)(hz / 1000));

	struct run r = { .duration = seconds * hz };
	printf("clock: measuring for %lu s\n", (unsigned long)seconds);
	uint32_t p0 = inl(tmr);
	long ret = run_user(tsc_loop, &r);
	uint32_t p1 = inl(tmr);
	uint64_t pm_ms = (uint64_t)(uint32_t)(p1 - p0) * 1000 / ACPI_PM_TMR_HZ;
	uint64_t tsc_ms = ms(r.elapsed, hz);
	printf("clock: max_gap_ms=%lu at_ms=%lu tsc_ms=%lu pmtmr_ms=%lu\n", (unsigned long)ms(r.max_gap, hz),
	       (unsigned long)ms(r.at, hz), (unsigned long)tsc_ms, (unsigned long)pm_ms);
	report(ret == 0, "TSC loop ran at CPL3");
	/* Within 5% plus the exits around the loop: if either clock stood
	 * still during a pause while the other went on, they would differ by
	 * the pause's length. */
	uint64_t diff = tsc_ms > pm_ms ? tsc_ms - pm_ms : pm_ms - tsc_ms;
	report(diff <= pm_ms / 20 + 50, "TSC (%lu ms) and PM timer (%lu ms) agree on the elapsed time",
	       (unsigned long)tsc_ms, (unsigned long)pm_ms);
}
