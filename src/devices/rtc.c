#include "devices/rtc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NSEC_PER_SEC 1000000000ull
#define DAY 86400

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];          /* registers A, B, the alarm bytes and the RAM bytes */
	time_t offset;              /* guest time - host time */
	uint64_t (*now)(void);
	time_t flags_upto;          /* guest second whose update register C has seen */
	uint64_t a_read_sec;        /* host second of the last register A read */
	uint8_t flags;              /* RTC_C_AF / RTC_C_UF not yet read */
};

static uint64_t host_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static time_t guest_secs(const struct rtc *r)
{
	return (time_t)(r->now() / NSEC_PER_SEC) + r->offset;
}

struct rtc *rtc_create(uint64_t (*now)(void))
{
	struct rtc *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	r->now = now ? now : host_now;
	r->cmos[RTC_REG_A] = 0x26;             /* 32.768 kHz base, 1024 Hz rate */
	r->cmos[RTC_REG_B] = RTC_B_24H;        /* BCD, 24-hour, as a BIOS leaves it */
	r->flags_upto = guest_secs(r);
	r->a_read_sec = r->now() / NSEC_PER_SEC;
	return r;
}

void rtc_destroy(struct rtc *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static bool binary(const struct rtc *r)
{
	return r->cmos[RTC_REG_B] & RTC_B_BINARY;
}

static uint8_t to_reg(const struct rtc *r, int v)
{
	return binary(r) ? (uint8_t)v : (uint8_t)(((v / 10) << 4) | (v % 10));
}

static int from_reg(const struct rtc *r, uint8_t v)
{
	return binary(r) ? v : (v >> 4) * 10 + (v & 0xf);
}

static void guest_tm(const struct rtc *r, struct tm *tm)
{
	time_t t = guest_secs(r);
	gmtime_r(&t, tm);
}

static uint8_t read_hours(const struct rtc *r, int hour)
{
	if (r->cmos[RTC_REG_B] & RTC_B_24H)
		return to_reg(r, hour);
	int h12 = hour % 12 ? hour % 12 : 12;
	return (uint8_t)(to_reg(r, h12) | (hour >= 12 ? 0x80 : 0));
}

/* Does the alarm match guest second t? Each alarm byte is compared with
 * the field as the guest would read it, unless it is "don't care". */
static bool alarm_matches(const struct rtc *r, time_t t)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	uint8_t want[3] = { r->cmos[RTC_SECONDS_ALARM], r->cmos[RTC_MINUTES_ALARM], r->cmos[RTC_HOURS_ALARM] };
	uint8_t now[3] = { to_reg(r, tm.tm_sec > 59 ? 59 : tm.tm_sec), to_reg(r, tm.tm_min),
			   read_hours(r, tm.tm_hour) };
	for (int i = 0; i < 3; i++)
		if ((want[i] & RTC_ALARM_DONT_CARE) != RTC_ALARM_DONT_CARE && want[i] != now[i])
			return false;
	return true;
}

/* The updates since register C was last read: each one sets UF, and AF
 * when the alarm matches the new time. A day covers every alarm. */
static void account_updates(struct rtc *r)
{
	time_t now = guest_secs(r);
	if (now <= r->flags_upto)
		return;
	r->flags |= RTC_C_UF;
	time_t from = now - r->flags_upto > DAY ? now - DAY : r->flags_upto + 1;
	for (time_t t = from; t <= now && !(r->flags & RTC_C_AF); t++)
		if (alarm_matches(r, t))
			r->flags |= RTC_C_AF;
	r->flags_upto = now;
}

static uint8_t read_reg_c(struct rtc *r)
{
	account_updates(r);
	uint8_t v = r->flags;
	if (v & r->cmos[RTC_REG_B] & (RTC_B_AIE | RTC_B_UIE))   /* AF/UF line up with AIE/UIE */
		v |= RTC_C_IRQF;
	r->flags = 0;
	return v;
}

/* Update-in-progress: the last RTC_UIP_NS of each second, unless the
 * guest stopped the updates (register B SET). Also once after an update
 * the guest's reads straddled: where guest kernel code is emulated, reads
 * can be further apart than the window, and a guest that waits for UIP to
 * come and go (kvm-unit-tests' s3) must still see it once a second. */
static uint8_t read_reg_a(struct rtc *r)
{
	uint8_t v = r->cmos[RTC_REG_A] & 0x7f;
	uint64_t ns = r->now(), sec = ns / NSEC_PER_SEC;
	bool straddled = sec > r->a_read_sec;
	r->a_read_sec = sec;
	if (!(r->cmos[RTC_REG_B] & RTC_B_SET) && (straddled || ns % NSEC_PER_SEC >= NSEC_PER_SEC - RTC_UIP_NS))
		v |= RTC_A_UIP;
	return v;
}

bool rtc_next_alarm(struct rtc *r, uint64_t *when_ns)
{
	pthread_mutex_lock(&r->lock);
	bool found = false;
	if (r->cmos[RTC_REG_B] & RTC_B_AIE) {
		time_t now = guest_secs(r);
		for (time_t t = now + 1; t <= now + DAY && !found; t++) {
			if (alarm_matches(r, t)) {
				*when_ns = (uint64_t)(t - r->offset) * NSEC_PER_SEC;
				found = true;
			}
		}
	}
	pthread_mutex_unlock(&r->lock);
	return found;
}

static uint8_t rtc_reg_read(struct rtc *r, uint8_t idx)
{
	struct tm tm;
	switch (idx) {
	case RTC_SECONDS: guest_tm(r, &tm); return to_reg(r, tm.tm_sec > 59 ? 59 : tm.tm_sec);
	case RTC_MINUTES: guest_tm(r, &tm); return to_reg(r, tm.tm_min);
	case RTC_HOURS:   guest_tm(r, &tm); return read_hours(r, tm.tm_hour);
	case RTC_WEEKDAY: guest_tm(r, &tm); return to_reg(r, tm.tm_wday + 1);
	case RTC_DAY:     guest_tm(r, &tm); return to_reg(r, tm.tm_mday);
	case RTC_MONTH:   guest_tm(r, &tm); return to_reg(r, tm.tm_mon + 1);
	case RTC_YEAR:    guest_tm(r, &tm); return to_reg(r, (tm.tm_year + 1900) % 100);
	case RTC_CENTURY: guest_tm(r, &tm); return to_reg(r, (tm.tm_year + 1900) / 100);
	case RTC_REG_A:   return read_reg_a(r);
	case RTC_REG_C:   return read_reg_c(r);
	case RTC_REG_D:   return RTC_D_VRT;
	default:          return r->cmos[idx];
	}
}

/* A write to a time field sets the guest's clock: the other fields keep
 * their current value, and the difference becomes the offset. */
static void rtc_set_field(struct rtc *r, uint8_t idx, uint8_t v)
{
	struct tm tm;
	guest_tm(r, &tm);
	int n = from_reg(r, v & (idx == RTC_HOURS ? 0x7f : 0xff));
	switch (idx) {
	case RTC_SECONDS: tm.tm_sec = n; break;
	case RTC_MINUTES: tm.tm_min = n; break;
	case RTC_HOURS:
		if (!(r->cmos[RTC_REG_B] & RTC_B_24H))
			n = n % 12 + ((v & 0x80) ? 12 : 0);
		tm.tm_hour = n;
		break;
	case RTC_DAY:     tm.tm_mday = n; break;
	case RTC_MONTH:   tm.tm_mon = n - 1; break;
	case RTC_YEAR:    tm.tm_year = (tm.tm_year + 1900) / 100 * 100 + n - 1900; break;
	case RTC_CENTURY: tm.tm_year = n * 100 + (tm.tm_year + 1900) % 100 - 1900; break;
	default: return;          /* the weekday follows from the date */
	}
	time_t t = timegm(&tm);
	if (t != (time_t)-1) {
		account_updates(r);     /* flags of the old timeline first */
		r->offset = t - (time_t)(r->now() / NSEC_PER_SEC);
		r->flags_upto = t;
	}
}

static void rtc_reg_write(struct rtc *r, uint8_t idx, uint8_t v)
{
	switch (idx) {
	case RTC_SECONDS: case RTC_MINUTES: case RTC_HOURS: case RTC_WEEKDAY:
	case RTC_DAY: case RTC_MONTH: case RTC_YEAR: case RTC_CENTURY:
		rtc_set_field(r, idx, v);
		break;
	case RTC_REG_C: case RTC_REG_D:
		break;                /* read-only */
	default:
		r->cmos[idx] = v;
	}
}

static uint64_t rtc_read(void *opaque, uint64_t off, unsigned size)
{
	struct rtc *r = opaque;
	if (off != 1)
		return 0xff;          /* the index port is write-only */
	pthread_mutex_lock(&r->lock);
	uint8_t v = rtc_reg_read(r, r->index);
	pthread_mutex_unlock(&r->lock);
	return v;
}

static void rtc_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct rtc *r = opaque;
	pthread_mutex_lock(&r->lock);
	if (off == 0)
		r->index = value & 0x7f;   /* bit 7 masks NMIs on real hardware */
	else
		rtc_reg_write(r, r->index, (uint8_t)value);
	pthread_mutex_unlock(&r->lock);
}

const struct bus_ops rtc_ops = { .read = rtc_read, .write = rtc_write };
