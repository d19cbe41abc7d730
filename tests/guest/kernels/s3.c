/* ACPI S3 (suspend to RAM) and resume, the way kvm-unit-tests' s3 does it:
 * real-mode resume code at 0x1000 becomes the FACS firmware waking vector;
 * the RTC alarm fires every second (all alarm bytes "don't care") with AIE
 * set and RTC_EN in PM1_EN; then SLP_TYP = S3 | SLP_EN. The word at 0 is 0
 * before the sleep request and 1 if this CPU ever runs on after it. Woken,
 * the resume code (real mode, CS:IP = 0100:0000) writes that word to the
 * debug-exit port: 0, a pass, only if the CPU stopped at once and came back
 * at the vector. Needs --rtc and --debug-exit (--test-devices). With
 * "nowake" on the command line RTC_EN stays off: nothing may wake it. */
#include "kit.h"

#define RESUME_VECTOR 0x1000u
#define RTC_REG_B_AIE 0x20

extern const char s3_resume_start[], s3_resume_end[];
__asm__(".pushsection .text\n"
	".code16\n"
	"s3_resume_start:\n"
	"	mov 0x0, %eax\n"           /* the word at 0 (DS = 0 after the reset) */
	"	mov $0xf4, %dx\n"
	"	out %eax, %dx\n"
	"1:	hlt\n"
	"	jmp 1b\n"
	"s3_resume_end:\n"
	".code64\n"
	".popsection\n");

static uint8_t cmos_read(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static void cmos_write(uint8_t reg, uint8_t v)
{
	outb(0x70, reg);
	outb(0x71, v);
}

void kmain(void)
{
	const struct acpi_sdt *fadt = acpi_find_table("FACP", 0);
	if (!report(fadt != NULL, "FADT present"))
		return;
	uint32_t facs_pa;
	memcpy(&facs_pa, (const uint8_t *)fadt + 36, 4);       /* FIRMWARE_CTRL */
	const struct acpi_sdt *facs = (const void *)(uintptr_t)facs_pa;
	if (!report(facs_pa && !memcmp(facs->signature, "FACS", 4), "FACS at %#x", facs_pa))
		return;
	volatile uint32_t *waking_vector = (volatile uint32_t *)((uintptr_t)facs_pa + 12);
	*waking_vector = RESUME_VECTOR;
	memcpy((void *)(uintptr_t)RESUME_VECTOR, s3_resume_start, (size_t)(s3_resume_end - s3_resume_start));
	printf("# resume code at %#x, PM1a_EVT %#x, PM1a_CNT %#x\n", RESUME_VECTOR,
	       acpi_pm1a_evt_port(), acpi_pm1a_cnt_port());

	if (!cmdline_has("nowake"))
		outw((uint16_t)(acpi_pm1a_evt_port() + 2), 1u << 10);   /* PM1_EN: RTC_EN */
	/* The alarm on the next second: wait for an update to pass first. */
	uint64_t t0 = uptime_ms();
	while (!(cmos_read(0x0a) & 0x80) && uptime_ms() - t0 < 2000)
		cpu_relax();
	while ((cmos_read(0x0a) & 0x80) && uptime_ms() - t0 < 2000)
		cpu_relax();
	if (!report(uptime_ms() - t0 < 2000, "RTC update-in-progress came and went"))
		return;
	cmos_read(0x0c);                                         /* clear the flags */
	cmos_write(0x01, 0xc0);
	cmos_write(0x03, 0xc0);
	cmos_write(0x05, 0xc0);
	cmos_write(0x0b, cmos_read(0x0b) | RTC_REG_B_AIE);

	uintptr_t zero = 0;
	volatile uint32_t *word = (volatile uint32_t *)zero;
	*word = 0;
	puts("# entering S3");
	outw(acpi_pm1a_cnt_port(), (1u << 10) | (1u << 13));    /* SLP_TYP 1 (S3) | SLP_EN */
	for (;;)
		*word = 1;
}
