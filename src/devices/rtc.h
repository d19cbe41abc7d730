/* An MC146818 CMOS real-time clock at ports 0x70 (index) / 0x71 (data)
 * (--rtc): the time and date of the host clock (UTC) in BCD or binary, 12-
 * or 24-hour as register B says; a guest write to a time field moves the
 * guest's clock by an offset; 128 bytes of CMOS RAM. No interrupts: the
 * periodic, alarm and update-ended flags stay clear. */
#ifndef EMBER_DEVICES_RTC_H
#define EMBER_DEVICES_RTC_H

#include <stdint.h>
#include <time.h>

#include "bus.h"

#define RTC_PORT      0x70
#define RTC_PORT_LEN  2

/* Register indexes. */
#define RTC_SECONDS   0x00
#define RTC_MINUTES   0x02
#define RTC_HOURS     0x04
#define RTC_WEEKDAY   0x06
#define RTC_DAY       0x07
#define RTC_MONTH     0x08
#define RTC_YEAR      0x09
#define RTC_REG_A     0x0a
#define RTC_REG_B     0x0b
#define RTC_REG_C     0x0c
#define RTC_REG_D     0x0d
#define RTC_CENTURY   0x32

#define RTC_B_24H     0x02
#define RTC_B_BINARY  0x04
#define RTC_D_VRT     0x80

struct rtc;

/* now returns the host's time (NULL: time(NULL)); tests pass a fake. */
struct rtc *rtc_create(time_t (*now)(void));
void rtc_destroy(struct rtc *r);
/* Register at RTC_PORT, RTC_PORT_LEN ports, opaque = the rtc. */
extern const struct bus_ops rtc_ops;

#endif
