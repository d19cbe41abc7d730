/* An MC146818 CMOS real-time clock at ports 0x70 (index) / 0x71 (data)
 * (--rtc): the time and date of the host clock (UTC) in BCD or binary, 12-
 * or 24-hour as register B says; a guest write to a time field moves the
 * guest's clock by an offset; 128 bytes of CMOS RAM. Register A shows
 * update-in-progress for the last 244 us of each second (and once after an
 * update that fell between two reads of it); register C shows
 * the alarm and update-ended flags of the seconds that passed since it was
 * last read (read clears them). It raises no interrupt: the alarm only
 * wakes a VM from S3 (rtc_next_alarm). The periodic flag stays clear. */
#ifndef EMBER_DEVICES_RTC_H
#define EMBER_DEVICES_RTC_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "bus.h"

#define RTC_PORT      0x70
#define RTC_PORT_LEN  2

/* Register indexes. */
#define RTC_SECONDS   0x00
#define RTC_SECONDS_ALARM 0x01
#define RTC_MINUTES   0x02
#define RTC_MINUTES_ALARM 0x03
#define RTC_HOURS     0x04
#define RTC_HOURS_ALARM   0x05
#define RTC_WEEKDAY   0x06
#define RTC_DAY       0x07
#define RTC_MONTH     0x08
#define RTC_YEAR      0x09
#define RTC_REG_A     0x0a
#define RTC_REG_B     0x0b
#define RTC_REG_C     0x0c
#define RTC_REG_D     0x0d
#define RTC_CENTURY   0x32

#define RTC_A_UIP     0x80
#define RTC_B_24H     0x02
#define RTC_B_BINARY  0x04
#define RTC_B_UIE     0x10
#define RTC_B_AIE     0x20
#define RTC_B_PIE     0x40
#define RTC_B_SET     0x80
#define RTC_C_UF      0x10
#define RTC_C_AF      0x20
#define RTC_C_IRQF    0x80
#define RTC_D_VRT     0x80
#define RTC_ALARM_DONT_CARE 0xc0   /* an alarm byte with both top bits set matches any value */
#define RTC_UIP_NS    244000       /* update-in-progress before each second */

struct rtc;

/* now returns the host's wall clock in ns since the epoch (NULL: the real
 * CLOCK_REALTIME); tests pass a fake. */
struct rtc *rtc_create(uint64_t (*now)(void));
void rtc_destroy(struct rtc *r);
/* When the alarm next fires, as a host wall-clock time in ns (the clock
 * rtc_create was given), if the guest enabled its interrupt (register B
 * AIE): true and *when_ns. False when it did not, or no time in the next
 * day matches. */
bool rtc_next_alarm(struct rtc *r, uint64_t *when_ns);
/* Register at RTC_PORT, RTC_PORT_LEN ports, opaque = the rtc. */
extern const struct bus_ops rtc_ops;

#endif
