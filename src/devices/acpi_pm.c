/* ACPI PM1a event/control blocks and the PM timer: power-off requests from
 * the guest (SLP_EN), the power button from the control thread (SCI). */
#include "devices/acpi_pm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arch/x86/layout.h"

/* One bus range covers all three blocks, so their ports must line up. */
_Static_assert(PORT_ACPI_PM1A_CNT - PORT_ACPI_PM1A_EVT == ACPI_PM_CNT, "PM1a_CNT offset");
_Static_assert(PORT_ACPI_PM_TMR - PORT_ACPI_PM1A_EVT == ACPI_PM_TMR, "PM_TMR offset");
_Static_assert(ACPI_SLP_EN == 1u << 13, "SLP_EN bit");

/* Status bits that raise the SCI when their enable bit is set (WAK_STS has
 * no enable bit; enable bit 14 is PCIEXP_WAKE_DIS, an inverted sense). */
#define PM1_EVENTS  (ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | ACPI_PM1_RTC)
/* PM1_CNT bits that hold a value; SLP_EN and GBL_RLS are write-only. */
#define PM1_CNT_RW  (ACPI_PM1_BM_RLD | ACPI_PM1_SLP_TYP_MASK)

#define NSEC_PER_SEC 1000000000ull

struct acpi_pm {
	pthread_mutex_t lock;           /* vCPU threads and the control thread */
	uint16_t sts;
	uint16_t en;
	uint16_t cnt;                   /* PM1_CNT_RW bits only */
	int sci_level;                  /* what the line was last set to */
	struct irq_line *sci;
	acpi_pm_sleep_fn *on_sleep;
	void *opaque;
	struct timespec start;          /* the timer counts from here */
};

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * NSEC_PER_SEC + (uint64_t)ts->tv_nsec;
}

/* Ticks since creation. Whole seconds and the remainder are scaled apart so
 * the product cannot overflow however long the VM runs; the result is
 * monotonic because each second contributes exactly ACPI_PM_TMR_HZ. */
static uint32_t pm_timer(const struct acpi_pm *pm)
{
	struct timespec now;
	uint64_t ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = ts_ns(&now) - ts_ns(&pm->start);
	return (uint32_t)((ns / NSEC_PER_SEC) * ACPI_PM_TMR_HZ +
			  (ns % NSEC_PER_SEC) * ACPI_PM_TMR_HZ / NSEC_PER_SEC);
}

/* Called with the lock held after sts or en changed: the SCI is a level,
 * so the line follows (sts & en) and moves only when that changes. Setting
 * it under the lock keeps concurrent updates from landing out of order. */
static void pm_update_sci(struct acpi_pm *pm)
{
	int level = (pm->sts & pm->en & PM1_EVENTS) != 0;

	if (level != pm->sci_level) {
		pm->sci_level = level;
		irq_set(pm->sci, level);
	}
}

struct acpi_pm *acpi_pm_create(struct irq_line *sci, acpi_pm_sleep_fn *on_sleep, void *opaque)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return NULL;
	pthread_mutex_init(&pm->lock, NULL);
	pm->sci = sci;
	pm->on_sleep = on_sleep;
	pm->opaque = opaque;
	clock_gettime(CLOCK_MONOTONIC, &pm->start);
	return pm;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	if (!pm)
		return;
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

void acpi_pm_press_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= ACPI_PM1_PWRBTN;
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

bool acpi_pm_wake_enabled(struct acpi_pm *pm, uint16_t event)
{
	pthread_mutex_lock(&pm->lock);
	bool on = pm->en & event;
	pthread_mutex_unlock(&pm->lock);
	return on;
}

void acpi_pm_wake(struct acpi_pm *pm, uint16_t event)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= event | ACPI_PM1_WAK_STS;
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static void put16(uint8_t *img, unsigned off, uint16_t v)
{
	img[off] = (uint8_t)v;
	img[off + 1] = (uint8_t)(v >> 8);
}

static uint16_t get16(const uint8_t *img, unsigned off)
{
	return (uint16_t)(img[off] | img[off + 1] << 8);
}

/*
 * Accesses are handled on a byte image of the whole 12-byte block, so any
 * size at any offset works: a read takes the bytes it covers from a
 * snapshot, a write only touches the bytes (masked bits) it covers. Bytes
 * 6-7 are a gap between PM1a_CNT and PM_TMR: they read 0, writes vanish.
 */
static uint64_t pm_read(void *opaque, uint64_t offset, unsigned size)
{
	struct acpi_pm *pm = opaque;
	uint8_t img[ACPI_PM_LEN] = { 0 };
	uint32_t tmr = pm_timer(pm);
	uint64_t value = 0;

	pthread_mutex_lock(&pm->lock);
	put16(img, ACPI_PM_STS, pm->sts);
	put16(img, ACPI_PM_EN, pm->en);
	/* No SMI to hand the machine to: it is always in ACPI mode. */
	put16(img, ACPI_PM_CNT, pm->cnt | ACPI_PM1_SCI_EN);
	pthread_mutex_unlock(&pm->lock);
	memcpy(img + ACPI_PM_TMR, &tmr, sizeof(tmr));

	for (unsigned i = 0; i < size && i < 8; i++) {
		/* Past the end of the block: all-ones, like an unclaimed port. */
		uint8_t b = offset < ACPI_PM_LEN - i ? img[offset + i] : 0xff;

		value |= (uint64_t)b << (8 * i);
	}
	return value;
}

static void pm_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct acpi_pm *pm = opaque;
	uint8_t val[ACPI_PM_LEN] = { 0 }, mask[ACPI_PM_LEN] = { 0 };
	uint16_t v, m;
	bool sleep = false;
	unsigned slp_typ = 0;

	for (unsigned i = 0; i < size && i < 8; i++) {
		if (offset >= ACPI_PM_LEN - i)
			break;
		val[offset + i] = (uint8_t)(value >> (8 * i));
		mask[offset + i] = 0xff;
	}

	pthread_mutex_lock(&pm->lock);
	/* PM1_STS: writing 1 clears a bit, 0 leaves it. */
	pm->sts &= (uint16_t)~(get16(val, ACPI_PM_STS) & get16(mask, ACPI_PM_STS));
	m = get16(mask, ACPI_PM_EN);
	pm->en = (uint16_t)((pm->en & ~m) | (get16(val, ACPI_PM_EN) & m));
	m = get16(mask, ACPI_PM_CNT) & PM1_CNT_RW;
	v = get16(val, ACPI_PM_CNT);
	pm->cnt = (uint16_t)((pm->cnt & ~m) | (v & m));
	if (v & get16(mask, ACPI_PM_CNT) & ACPI_SLP_EN) {
		/* SLP_TYP as it stands after this write, which may have set
		 * it in the same access or in an earlier one. */
		sleep = true;
		slp_typ = (pm->cnt & ACPI_PM1_SLP_TYP_MASK) >> ACPI_PM1_SLP_TYP_SHIFT;
	}
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);

	if (!sleep)
		return;
	/* Outside the lock: on_sleep may stop vCPUs or press the button. */
	if (pm->on_sleep && pm->on_sleep(pm->opaque, slp_typ))
		return;
	/* Still in S0: the OS polls WAK_STS after SLP_EN, and would spin
	 * forever on a sleep state Ember ignores. */
	pthread_mutex_lock(&pm->lock);
	pm->sts |= ACPI_PM1_WAK_STS;
	pthread_mutex_unlock(&pm->lock);
}

const struct bus_ops acpi_pm_ops = {
	.read = pm_read,
	.write = pm_write,
};

/* ---- state ("acpi-pm" v1) ---- */

enum { T_PM_STS = 1, T_PM_EN, T_PM_CNT, T_PM_TMR };

static int pm_save(void *opaque, struct state_writer *w)
{
	struct acpi_pm *pm = opaque;
	pthread_mutex_lock(&pm->lock);
	state_put_u16(w, T_PM_STS, pm->sts);
	state_put_u16(w, T_PM_EN, pm->en);
	state_put_u16(w, T_PM_CNT, pm->cnt);
	pthread_mutex_unlock(&pm->lock);
	/* The timer goes on from here in the restored VM. */
	state_put_u32_volatile(w, T_PM_TMR, pm_timer(pm));
	return 0;
}

static int pm_load(void *opaque, struct state_reader *r)
{
	struct acpi_pm *pm = opaque;
	uint16_t sts, en, cnt;
	uint32_t tmr;
	int e;
	if ((e = state_get_u16(r, T_PM_STS, &sts)) || (e = state_get_u16(r, T_PM_EN, &en)) ||
	    (e = state_get_u16(r, T_PM_CNT, &cnt)) || (e = state_get_u32(r, T_PM_TMR, &tmr)))
		return e;
	if (cnt & ~PM1_CNT_RW)
		return state_fail(r, "PM1_CNT %#x has write-only bits", cnt);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* start = now - tmr ticks, so pm_timer() reads tmr now. */
	uint64_t back = (uint64_t)tmr / ACPI_PM_TMR_HZ * NSEC_PER_SEC +
			(uint64_t)(tmr % ACPI_PM_TMR_HZ) * NSEC_PER_SEC / ACPI_PM_TMR_HZ;
	uint64_t start = ts_ns(&now) - back;
	pthread_mutex_lock(&pm->lock);
	pm->sts = sts;
	pm->en = en;
	pm->cnt = cnt;
	pm->start.tv_sec = (time_t)(start / NSEC_PER_SEC);
	pm->start.tv_nsec = (long)(start % NSEC_PER_SEC);
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	return 0;
}

const struct devstate_ops acpi_pm_state_ops = { .name = "acpi-pm", .version = 1,
						  .save = pm_save, .load = pm_load };
