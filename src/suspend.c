/* ACPI S3 for the VM: see suspend.h. The vCPU thread only stops the vCPUs
 * (it cannot wait for itself to park); the loop thread waits for them,
 * arms the wake timer and, when it fires, resets them and lets them run. */
#include "suspend.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/bios.h"
#include "devices/acpi_pm.h"
#include "devices/rtc.h"
#include "log.h"
#include "vcpu.h"
#include "vm.h"

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void wake(struct vm *vm, uint16_t event)
{
	uint32_t vec = 0;
	if (acpi_read_waking_vector(&vm->mem, vm->boot.rsdp, &vec) || !vec) {
		log_error("the guest woke from S3 but left no FACS waking vector to resume at");
		vm_stop(vm, STOP_CRASH, EXIT_GUEST_CRASH);
		return;
	}
	acpi_pm_wake(vm->pm, event);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		int r = vcpu_reset_for_wake(vm->vcpus[i], vec);
		if (r) {
			log_error("resetting vCPU %u for the S3 resume: %s", i, strerror(-r));
			vm_stop(vm, STOP_ERROR, EXIT_VMM_ERROR);
			return;
		}
	}
	/* A BIOS sets the chipset up again on resume. */
	if (vm->cfg->bios_state && bios_program_chipset(vm->vm_fd))
		log_warn("S3 resume: could not program the PIC and PIT again");
	log_info("woke from S3 (suspend to RAM): BSP at %04x:%04x", vec >> 4, vec & 0xf);
	vm->suspended = false;
	vm_resume(vm);
}

static void on_wake_timer(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	loop_remove(&vm->loop, vm->s3_timer_fd);
	close(vm->s3_timer_fd);
	vm->s3_timer_fd = -1;
	if (vm->suspended)
		wake(vm, ACPI_PM1_RTC);
}

/* Loop thread: the vCPUs were told to stop; wait until they have, then
 * arm the wake. */
static void on_suspend(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t n;
	if (read(vm->s3_efd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&vm->lock);
	while (vm->paused_vcpus < vm->ncpus && vm->state == VM_PAUSED)
		pthread_cond_wait(&vm->cond, &vm->lock);
	bool asleep = vm->state == VM_PAUSED && vm->suspended;
	pthread_mutex_unlock(&vm->lock);
	if (!asleep)
		return;
	uint64_t when;
	if (vm->rtc && acpi_pm_wake_enabled(vm->pm, ACPI_PM1_RTC) && rtc_next_alarm(vm->rtc, &when)) {
		uint64_t now = realtime_ns(), delay = when > now ? when - now : 0;
		vm->s3_timer_fd = loop_add_timer(&vm->loop, delay, 0, on_wake_timer, vm);
		if (vm->s3_timer_fd < 0) {
			log_error("S3: arming the RTC wake: %s", strerror(-vm->s3_timer_fd));
			vm_stop(vm, STOP_ERROR, EXIT_VMM_ERROR);
			return;
		}
		log_info("guest entered S3 (suspend to RAM); the RTC alarm wakes it in %.3f s",
			 (double)delay / 1e9);
	} else {
		log_warn("guest entered S3 (suspend to RAM) with no wake event enabled (RTC_EN and the "
			 "RTC alarm): it sleeps until Ember is stopped");
	}
}

int vm_suspend_init(struct vm *vm)
{
	vm->s3_timer_fd = -1;
	vm->s3_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->s3_efd < 0)
		return -errno;
	return loop_add(&vm->loop, vm->s3_efd, EPOLLIN, on_suspend, vm);
}

void vm_suspend_destroy(struct vm *vm)
{
	if (vm->s3_timer_fd >= 0)
		close(vm->s3_timer_fd);
	if (vm->s3_efd >= 0)
		close(vm->s3_efd);
	vm->s3_timer_fd = vm->s3_efd = -1;
}

bool vm_suspend(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->state != VM_RUNNING) {
		pthread_mutex_unlock(&vm->lock);
		return false;
	}
	__atomic_store_n(&vm->state, VM_PAUSED, __ATOMIC_SEQ_CST);
	vm->suspended = true;
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(vm->vcpus[i]);
	pthread_mutex_unlock(&vm->lock);
	uint64_t one = 1;
	if (write(vm->s3_efd, &one, sizeof(one)) != sizeof(one))
		log_warn("S3: could not wake the loop thread");
	return true;
}
