#include "devices/rtc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];          /* registers A, B and the RAM bytes */
	time_t offset;              /* guest time - host time */
	time_t (*now)(void);
};

static time_t host_now(void)
{
	return time(NULL);
}

struct rtc *rtc_create(time_t (*now)(void))
{
	struct rtc *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	r->now = now ? now : host_now;
	r->cmos[RTC_REG_A] = 0x26;             /* 32.768 kHz base, 1024 Hz rate */
	r->cmos[RTC_REG_B] = RTC_B_24H;        /* BCD, 24-hour, as a BIOS leaves it */
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
	time_t t = r->now() + r->offset;
	gmtime_r(&t, tm);
}

static uint8_t read_hours(const struct rtc *r, int hour)
{
	if (r->cmos[RTC_REG_B] & RTC_B_24H)
		return to_reg(r, hour);
	int h12 = hour % 12 ? hour % 12 : 12;
	return (uint8_t)(to_reg(r, h12) | (hour >= 12 ? 0x80 : 0));
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
	case RTC_REG_A:   return r->cmos[RTC_REG_A] & 0x7f;   /* never update-in-progress */
	case RTC_REG_C:   return 0;                           /* no interrupt flags */
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
	if (t != (time_t)-1)
		r->offset = t - r->now();
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
