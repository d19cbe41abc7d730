/* The ACPI fixed-hardware PM registers (PM1a event and control blocks and
 * the PM timer) behind the FADT: how the guest powers itself off and how the
 * control thread asks it to (the fixed power button). */
#ifndef EMBER_DEVICES_ACPI_PM_H
#define EMBER_DEVICES_ACPI_PM_H

#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "irq.h"
#include "migration/devstate.h"

/* One I/O range of ACPI_PM_LEN bytes at PORT_ACPI_PM1A_EVT; offsets in it: */
#define ACPI_PM_STS            0   /* PM1a_STS, 16 bit, write 1 to clear */
#define ACPI_PM_EN             2   /* PM1a_EN, 16 bit */
#define ACPI_PM_CNT            4   /* PM1a_CNT, 16 bit */
#define ACPI_PM_TMR            8   /* PM_TMR, 32 bit, read-only */
#define ACPI_PM_LEN            12

/* Register lengths the FADT advertises (PM1_EVT_LEN, PM1_CNT_LEN, PM_TMR_LEN). */
#define ACPI_PM1_EVT_LEN       4
#define ACPI_PM1_CNT_LEN       2
#define ACPI_PM_TMR_LEN        4

/* The timer counts all 32 bits (the FADT sets TMR_VAL_EXT) at this rate. */
#define ACPI_PM_TMR_HZ         3579545u

/* PM1 status/enable bits (ACPI 6.5 §4.8.3.1.1, §4.8.3.1.2). */
#define ACPI_PM1_TMR           (1u << 0)
#define ACPI_PM1_GBL           (1u << 5)
#define ACPI_PM1_PWRBTN        (1u << 8)
#define ACPI_PM1_SLPBTN        (1u << 9)
#define ACPI_PM1_RTC           (1u << 10)
#define ACPI_PM1_WAK_STS       (1u << 15)

/* PM1 control bits (ACPI 6.5 §4.8.3.2.1); SLP_EN is in layout.h. */
#define ACPI_PM1_SCI_EN        (1u << 0)
#define ACPI_PM1_BM_RLD        (1u << 1)
#define ACPI_PM1_GBL_RLS       (1u << 2)
#define ACPI_PM1_SLP_TYP_SHIFT 10
#define ACPI_PM1_SLP_TYP_MASK  (7u << ACPI_PM1_SLP_TYP_SHIFT)

struct acpi_pm;

/* Called, without the device lock held, on the vCPU thread whose write set
 * SLP_EN; slp_typ is the SLP_TYP field (ACPI_S5_SLP_TYP = power off,
 * ACPI_S3_SLP_TYP = suspend to RAM). Returns true when the machine goes to
 * sleep (WAK_STS is then set by acpi_pm_wake), false when it stays in S0
 * (WAK_STS is set at once, so an OS polling it does not spin). It must not
 * destroy the device. */
typedef bool acpi_pm_sleep_fn(void *opaque, unsigned slp_typ);

/* sci is the line the SCI is level-driven on (active high, as the MADT
 * override says); it may be NULL, and so may on_sleep. NULL on ENOMEM. */
struct acpi_pm *acpi_pm_create(struct irq_line *sci, acpi_pm_sleep_fn *on_sleep, void *opaque);
/* The device must no longer be on a bus. */
void acpi_pm_destroy(struct acpi_pm *pm);

/* Register at PORT_ACPI_PM1A_EVT, length ACPI_PM_LEN, opaque = the acpi_pm.
 * Any access size at any offset works. */
extern const struct bus_ops acpi_pm_ops;

/* Ask the guest to power off (ctl "shutdown"): sets PWRBTN_STS, which
 * raises the SCI once the guest has set PWRBTN_EN. */
void acpi_pm_press_power_button(struct acpi_pm *pm);

/* Save/load of the registers and the timer (opaque = the acpi_pm). */
extern const struct devstate_ops acpi_pm_state_ops;
/* Is this wake event (ACPI_PM1_RTC, ACPI_PM1_PWRBTN) enabled in PM1_EN? */
bool acpi_pm_wake_enabled(struct acpi_pm *pm, uint16_t event);
/* Back from a sleep state because of event: sets its status bit and
 * WAK_STS. */
void acpi_pm_wake(struct acpi_pm *pm, uint16_t event);

#endif
