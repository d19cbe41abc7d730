/* Unit tests for the ACPI PM registers: sleep requests, write-1-to-clear
 * status, the power button's SCI, the PM timer and odd-size accesses. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "arch/x86/layout.h"
#include "devices/acpi_pm.h"

struct fake_irq {
	struct irq_line line;
	int level;
	unsigned changes;
};

struct fake_vm {
	unsigned sleeps;
	unsigned slp_typ;
};

struct ctx {
	struct fake_irq irq;
	struct fake_vm vm;
	struct acpi_pm *pm;
};

static void fake_set_level(struct irq_line *line, int level)
{
	struct fake_irq *f = line->opaque;

	if (f->level != level)
		f->changes++;
	f->level = level;
}

/* Type 3 "sleeps" (WAK_STS waits for acpi_pm_wake); others stay in S0. */
static bool fake_sleep(void *opaque, unsigned slp_typ)
{
	struct fake_vm *vm = opaque;

	vm->sleeps++;
	vm->slp_typ = slp_typ;
	return slp_typ == 3;
}

static int setup(void **state)
{
	struct ctx *c = test_calloc(1, sizeof(*c));

	c->irq.line = (struct irq_line){ .set_level = fake_set_level, .gsi = IRQ_ACPI_SCI,
					 .opaque = &c->irq };
	c->pm = acpi_pm_create(&c->irq.line, fake_sleep, &c->vm);
	assert_non_null(c->pm);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	acpi_pm_destroy(c->pm);
	test_free(c);
	return 0;
}

static uint64_t rd(struct ctx *c, uint64_t off, unsigned size)
{
	return acpi_pm_ops.read(c->pm, off, size);
}

static void wr(struct ctx *c, uint64_t off, unsigned size, uint64_t v)
{
	acpi_pm_ops.write(c->pm, off, size, v);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void test_initial_state(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(rd(c, ACPI_PM_STS, 2), 0);
	assert_int_equal(rd(c, ACPI_PM_EN, 2), 0);
	/* No SMI: SCI_EN is always set. */
	assert_int_equal(rd(c, ACPI_PM_CNT, 2), ACPI_PM1_SCI_EN);
	assert_int_equal(c->irq.level, 0);
	assert_int_equal(c->irq.changes, 0);
}

static void test_slp_en_calls_on_sleep(void **state)
{
	struct ctx *c = *state;
	uint16_t typ5 = ACPI_S5_SLP_TYP << ACPI_PM1_SLP_TYP_SHIFT;

	/* SLP_TYP alone is just stored. */
	wr(c, ACPI_PM_CNT, 2, typ5);
	assert_int_equal(c->vm.sleeps, 0);
	assert_int_equal(rd(c, ACPI_PM_CNT, 2), typ5 | ACPI_PM1_SCI_EN);
	/* SLP_EN fires once, with the type; it reads back as 0. */
	wr(c, ACPI_PM_CNT, 2, typ5 | ACPI_SLP_EN);
	assert_int_equal(c->vm.sleeps, 1);
	assert_int_equal(c->vm.slp_typ, ACPI_S5_SLP_TYP);
	assert_int_equal(rd(c, ACPI_PM_CNT, 2), typ5 | ACPI_PM1_SCI_EN);
	/* Still running afterwards: WAK_STS says we woke, SCI unaffected. */
	assert_true(rd(c, ACPI_PM_STS, 2) & ACPI_PM1_WAK_STS);
	wr(c, ACPI_PM_STS, 2, ACPI_PM1_WAK_STS);
	assert_int_equal(rd(c, ACPI_PM_STS, 2), 0);
	assert_int_equal(c->irq.changes, 0);
	/* Another type in the same write as SLP_EN, one the machine sleeps
	 * in: no WAK_STS until the wake, which sets the event's bit too. */
	wr(c, ACPI_PM_CNT, 2, (3u << ACPI_PM1_SLP_TYP_SHIFT) | ACPI_SLP_EN);
	assert_int_equal(c->vm.sleeps, 2);
	assert_int_equal(c->vm.slp_typ, 3);
	assert_int_equal(rd(c, ACPI_PM_STS, 2), 0);
	assert_false(acpi_pm_wake_enabled(c->pm, ACPI_PM1_RTC));
	wr(c, ACPI_PM_EN, 2, ACPI_PM1_RTC);
	assert_true(acpi_pm_wake_enabled(c->pm, ACPI_PM1_RTC));
	acpi_pm_wake(c->pm, ACPI_PM1_RTC);
	assert_int_equal(rd(c, ACPI_PM_STS, 2), ACPI_PM1_WAK_STS | ACPI_PM1_RTC);
	/* RTC_STS with RTC_EN raises the SCI. */
	assert_int_equal(c->irq.level, 1);
}

static void test_status_write_one_to_clear(void **state)
{
	struct ctx *c = *state;

	acpi_pm_press_power_button(c->pm);
	assert_int_equal(rd(c, ACPI_PM_STS, 2), ACPI_PM1_PWRBTN);
	wr(c, ACPI_PM_STS, 2, 0);
	assert_int_equal(rd(c, ACPI_PM_STS, 2), ACPI_PM1_PWRBTN);
	wr(c, ACPI_PM_STS, 2, 0xffff & ~ACPI_PM1_PWRBTN);
	assert_int_equal(rd(c, ACPI_PM_STS, 2), ACPI_PM1_PWRBTN);
	wr(c, ACPI_PM_STS, 2, ACPI_PM1_PWRBTN);
	assert_int_equal(rd(c, ACPI_PM_STS, 2), 0);
	/* Status writes never set bits. */
	wr(c, ACPI_PM_STS, 2, 0xffff);
	assert_int_equal(rd(c, ACPI_PM_STS, 2), 0);
}

static void test_enable_is_read_write(void **state)
{
	struct ctx *c = *state;

	wr(c, ACPI_PM_EN, 2, ACPI_PM1_PWRBTN | ACPI_PM1_TMR);
	assert_int_equal(rd(c, ACPI_PM_EN, 2), ACPI_PM1_PWRBTN | ACPI_PM1_TMR);
	wr(c, ACPI_PM_EN, 2, 0);
	assert_int_equal(rd(c, ACPI_PM_EN, 2), 0);
	assert_int_equal(c->irq.changes, 0);
}

static void test_power_button_sci(void **state)
{
	struct ctx *c = *state;

	/* Not enabled: status only, no SCI. */
	acpi_pm_press_power_button(c->pm);
	assert_int_equal(c->irq.level, 0);
	assert_int_equal(c->irq.changes, 0);
	/* Enabling with the status pending raises it... */
	wr(c, ACPI_PM_EN, 2, ACPI_PM1_PWRBTN);
	assert_int_equal(c->irq.level, 1);
	/* ...clearing the status lowers it... */
	wr(c, ACPI_PM_STS, 2, ACPI_PM1_PWRBTN);
	assert_int_equal(c->irq.level, 0);
	/* ...a press while enabled raises it, pressing again changes nothing... */
	acpi_pm_press_power_button(c->pm);
	assert_int_equal(c->irq.level, 1);
	acpi_pm_press_power_button(c->pm);
	assert_int_equal(c->irq.changes, 3);
	/* ...and disabling lowers it with the status still set. */
	wr(c, ACPI_PM_EN, 2, 0);
	assert_int_equal(c->irq.level, 0);
	assert_int_equal(rd(c, ACPI_PM_STS, 2), ACPI_PM1_PWRBTN);
	/* Enable bits without a matching status never raise it. */
	wr(c, ACPI_PM_STS, 2, 0xffff);
	wr(c, ACPI_PM_EN, 2, 0xffff);
	assert_int_equal(c->irq.level, 0);
	assert_int_equal(c->irq.changes, 4);
}

/* No SCI line and no sleep callback: the device still works. */
static void test_null_callbacks(void **state)
{
	struct acpi_pm *pm = acpi_pm_create(NULL, NULL, NULL);

	assert_non_null(pm);
	acpi_pm_ops.write(pm, ACPI_PM_EN, 2, ACPI_PM1_PWRBTN);
	acpi_pm_press_power_button(pm);
	assert_int_equal(acpi_pm_ops.read(pm, ACPI_PM_STS, 2), ACPI_PM1_PWRBTN);
	acpi_pm_ops.write(pm, ACPI_PM_CNT, 2, ACPI_SLP_EN | (5u << ACPI_PM1_SLP_TYP_SHIFT));
	acpi_pm_destroy(pm);
	acpi_pm_destroy(NULL);
}

/* The timer runs at 3.579545 MHz against CLOCK_MONOTONIC. */
static void test_timer_rate(void **state)
{
	struct ctx *c = *state;
	struct timespec ms20 = { .tv_nsec = 20 * 1000 * 1000 };
	uint64_t before, after;
	uint32_t t0, t1;
	uint64_t ticks, max;

	before = now_ns();
	t0 = (uint32_t)rd(c, ACPI_PM_TMR, 4);
	nanosleep(&ms20, NULL);
	t1 = (uint32_t)rd(c, ACPI_PM_TMR, 4);
	after = now_ns();
	ticks = (uint32_t)(t1 - t0);
	max = (after - before) * ACPI_PM_TMR_HZ / 1000000000ull + 2;
	assert_true(ticks >= 20ull * ACPI_PM_TMR_HZ / 1000 - 2);
	assert_true(ticks <= max);
}

static void test_timer_monotonic(void **state)
{
	struct ctx *c = *state;
	uint32_t prev = (uint32_t)rd(c, ACPI_PM_TMR, 4);

	for (int i = 0; i < 100000; i++) {
		uint32_t t = (uint32_t)rd(c, ACPI_PM_TMR, 4);

		/* The counter starts at 0 with the device: no wrap here. */
		assert_true(t >= prev);
		prev = t;
	}
	assert_true(prev > 0);
}

static void test_timer_read_only(void **state)
{
	struct ctx *c = *state;
	uint32_t t0 = (uint32_t)rd(c, ACPI_PM_TMR, 4);

	wr(c, ACPI_PM_TMR, 4, 0);
	wr(c, ACPI_PM_TMR + 2, 2, 0);
	assert_true((uint32_t)rd(c, ACPI_PM_TMR, 4) >= t0);
	wr(c, ACPI_PM_TMR, 4, 0xffffffff);
	assert_true((uint32_t)rd(c, ACPI_PM_TMR, 4) < 0xf0000000u);
	assert_int_equal(c->irq.changes, 0);
	assert_int_equal(c->vm.sleeps, 0);
}

static void test_byte_accesses(void **state)
{
	struct ctx *c = *state;

	acpi_pm_press_power_button(c->pm);
	/* PWRBTN_STS is bit 0 of byte 1. */
	assert_int_equal(rd(c, ACPI_PM_STS, 1), 0);
	assert_int_equal(rd(c, ACPI_PM_STS + 1, 1), 0x01);
	/* A byte write to byte 0 cannot clear a bit of byte 1. */
	wr(c, ACPI_PM_STS, 1, 0xff);
	assert_int_equal(rd(c, ACPI_PM_STS, 2), ACPI_PM1_PWRBTN);
	/* PWRBTN_EN through the high byte of PM1_EN; the low byte stays. */
	wr(c, ACPI_PM_EN, 1, ACPI_PM1_TMR);
	wr(c, ACPI_PM_EN + 1, 1, 0x01);
	assert_int_equal(rd(c, ACPI_PM_EN, 2), ACPI_PM1_PWRBTN | ACPI_PM1_TMR);
	assert_int_equal(c->irq.level, 1);
	wr(c, ACPI_PM_STS + 1, 1, 0x01);
	assert_int_equal(rd(c, ACPI_PM_STS, 2), 0);
	assert_int_equal(c->irq.level, 0);
	/* SLP_TYP (bits 10-12) and SLP_EN (13) are in byte 5 of the block. */
	assert_int_equal(rd(c, ACPI_PM_CNT, 1), ACPI_PM1_SCI_EN);
	wr(c, ACPI_PM_CNT + 1, 1, (ACPI_S5_SLP_TYP << 2) | (1u << 5));
	assert_int_equal(c->vm.sleeps, 1);
	assert_int_equal(c->vm.slp_typ, ACPI_S5_SLP_TYP);
	assert_int_equal(rd(c, ACPI_PM_CNT + 1, 1), ACPI_S5_SLP_TYP << 2);
	/* A write of SCI_EN's byte does not fire a sleep. */
	wr(c, ACPI_PM_CNT, 1, 0);
	assert_int_equal(c->vm.sleeps, 1);
	assert_int_equal(rd(c, ACPI_PM_CNT, 2),
			 (ACPI_S5_SLP_TYP << ACPI_PM1_SLP_TYP_SHIFT) | ACPI_PM1_SCI_EN);
}

static void test_wide_and_straddling_accesses(void **state)
{
	struct ctx *c = *state;

	acpi_pm_press_power_button(c->pm);
	/* A dword at 0 is PM1_STS with PM1_EN above it. */
	wr(c, ACPI_PM_EN, 2, ACPI_PM1_GBL);
	assert_int_equal(rd(c, 0, 4), ACPI_PM1_PWRBTN | (uint32_t)ACPI_PM1_GBL << 16);
	/* A dword at 2 writes PM1_EN and PM1_CNT together. */
	wr(c, ACPI_PM_EN, 4, ACPI_PM1_PWRBTN |
	   (uint32_t)((ACPI_S5_SLP_TYP << ACPI_PM1_SLP_TYP_SHIFT) | ACPI_SLP_EN) << 16);
	assert_int_equal(rd(c, ACPI_PM_EN, 2), ACPI_PM1_PWRBTN);
	assert_int_equal(c->irq.level, 1);
	assert_int_equal(c->vm.sleeps, 1);
	assert_int_equal(c->vm.slp_typ, ACPI_S5_SLP_TYP);
	/* A word across PM1_STS/PM1_EN (bytes 1-2): clears PWRBTN_STS, sets
	 * the low byte of PM1_EN. */
	wr(c, 1, 2, 0x2101);
	assert_false(rd(c, ACPI_PM_STS, 2) & ACPI_PM1_PWRBTN);
	assert_int_equal(rd(c, ACPI_PM_EN, 2), ACPI_PM1_PWRBTN | 0x21);
	assert_int_equal(c->irq.level, 0);
	/* Bytes 6-7 are a gap: read 0, writes go nowhere. */
	wr(c, 6, 2, 0xffff);
	assert_int_equal(rd(c, 6, 2), 0);
	assert_int_equal(rd(c, ACPI_PM_CNT, 4) >> 16, 0);
	/* A qword at 0 sees all four registers' low bytes in order. */
	assert_int_equal(rd(c, 0, 8) & 0x0000ffff0000ffffull,
			 rd(c, 0, 2) | rd(c, ACPI_PM_CNT, 2) << 32);
}

/* Accesses running off the end of the block. */
static void test_past_the_end(void **state)
{
	struct ctx *c = *state;
	uint64_t v = rd(c, 10, 4);

	assert_int_equal(v >> 16, 0xffff);
	assert_int_equal(rd(c, 11, 2) >> 8, 0xff);
	assert_int_equal(rd(c, ACPI_PM_LEN, 4), 0xffffffff);
	assert_int_equal(rd(c, UINT64_MAX, 4), 0xffffffff);
	wr(c, 11, 4, 0xffffffff);
	wr(c, ACPI_PM_LEN, 4, 0xffffffff);
	wr(c, UINT64_MAX - 1, 8, ~0ull);
	assert_int_equal(rd(c, 0, 4), 0);
	assert_int_equal(rd(c, ACPI_PM_CNT, 2), ACPI_PM1_SCI_EN);
	assert_int_equal(c->vm.sleeps, 0);
}

#define THREADS    4
#define ITERATIONS 20000

static void *hammer(void *arg)
{
	struct ctx *c = arg;

	for (int i = 0; i < ITERATIONS; i++) {
		switch (i % 4) {
		case 0:
			acpi_pm_press_power_button(c->pm);
			break;
		case 1:
			wr(c, ACPI_PM_EN, 2, i & 8 ? ACPI_PM1_PWRBTN : 0);
			break;
		case 2:
			wr(c, ACPI_PM_STS + 1, 1, 0x01);
			break;
		default:
			(void)rd(c, 0, 4);
		}
	}
	return NULL;
}

/* Concurrent callers: the line always ends up matching sts & en. */
static void test_concurrent(void **state)
{
	struct ctx *c = *state;
	pthread_t t[THREADS];
	uint64_t v;

	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, c), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	v = rd(c, 0, 4);
	assert_int_equal(c->irq.level, (v & (v >> 16) & ACPI_PM1_PWRBTN) != 0);
	wr(c, ACPI_PM_EN, 2, ACPI_PM1_PWRBTN);
	acpi_pm_press_power_button(c->pm);
	assert_int_equal(c->irq.level, 1);
	wr(c, ACPI_PM_STS, 2, 0xffff);
	assert_int_equal(c->irq.level, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_initial_state),
		T(test_slp_en_calls_on_sleep),
		T(test_status_write_one_to_clear),
		T(test_enable_is_read_write),
		T(test_power_button_sci),
		T(test_null_callbacks),
		T(test_timer_rate),
		T(test_timer_monotonic),
		T(test_timer_read_only),
		T(test_byte_accesses),
		T(test_wide_and_straddling_accesses),
		T(test_past_the_end),
		T(test_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
