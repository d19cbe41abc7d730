#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/backend.h"
#include "arch/x86/bios.h"
#include "arch/x86/cpufeat.h"
#include "arch/x86/layout.h"
#include "console.h"
#include "control/control.h"
#include "devices/acpi_pm.h"
#include "devices/fw_cfg.h"
#include "devices/pc_testdev.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "devices/sysctl.h"
#include "host.h"
#include "log.h"
#include "migration/migrate.h"
#include "migration/snapshot.h"
#include "suspend.h"
#include "sandbox/sandbox.h"
#include "vcpu.h"
#include "vm_pci.h"

uint64_t ember_start_ns;

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void kvm_irq_line_set(struct irq_line *line, int level)
{
	struct vm *vm = line->opaque;
	struct kvm_irq_level irq = { .irq = line->gsi, .level = (uint32_t)level };
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_warn("KVM_IRQ_LINE %u: %s", line->gsi, strerror(errno));
}

static bool on_sleep(void *opaque, unsigned slp_typ)
{
	struct vm *vm = opaque;
	if (slp_typ == ACPI_S5_SLP_TYP) {
		vm_stop(vm, STOP_POWEROFF, EXIT_GUEST_OFF);
		return true;
	}
	if (slp_typ == ACPI_S3_SLP_TYP)
		return vm_suspend(vm);
	log_warn("guest asked for ACPI sleep type %u, which Ember does not offer", slp_typ);
	return false;
}

/* Print msg as a user error and return EXIT_USAGE. */
static int user_error(const char *msg)
{
	fprintf(stderr, "ember: error: %s\n", msg);
	return EXIT_USAGE;
}

static int vm_error(const char *what, int err)
{
	log_error("%s: %s", what, strerror(err < 0 ? -err : err));
	return EXIT_VMM_ERROR;
}

/* Say what the CPU model means on this backend, once. */
static void warn_cpu_model(struct vm *vm)
{
	const struct cpu_model *m = &vm->cpu.model;
	if (m->backend_masked[0])
		log_info("--cpu %s: hiding %s, which %s cannot run in guest kernel mode (+name shows it)",
			 m->spec, m->backend_masked, vm->backend);
	if (m->backend_forced[0] && strcmp(m->base, "host"))
		log_warn("--cpu %s: %s also shows the guest %s; a snapshot restores only where KVM does the same",
			 m->spec, vm->backend, m->backend_forced);
	static const int risky[] = { F_CX16, F_XSAVE };
	for (unsigned i = 0; i < 2 && !strcmp(vm->backend, "kvm_pvm"); i++)
		if (cpuid_has(m->cpuid, risky[i]) && !strstr(m->backend_forced, cpu_features[risky[i]].name))
			log_warn("--cpu %s offers %s: kvm_pvm cannot run %s in guest kernel mode", m->spec,
				 cpu_features[risky[i]].name, i ? "xsave/xrstor" : "lock cmpxchg16b");
}

static int open_kvm(struct vm *vm)
{
	if (vm->cfg->files) {
		vm->kvm_fd = vm->cfg->files->kvm_fd;
		vm->kvm_fd_borrowed = true;
	} else if ((vm->kvm_fd = host_open_kvm()) < 0) {
		return EXIT_VMM_ERROR;
	}
	vm->backend = kvm_backend_name();
	kvm_backend_announce(vm->backend);
	int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max > 0 && vm->cfg->ncpus > (unsigned)max) {
		fprintf(stderr, "ember: error: --cpus %u: KVM on this host allows at most %d\n",
			vm->cfg->ncpus, max);
		return EXIT_USAGE;
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size <= 0)
		return vm_error("KVM_GET_VCPU_MMAP_SIZE", errno);
	char err[512];
	int r = guest_cpu_init(&vm->cpu, vm->kvm_fd, vm->backend, vm->cfg->cpu ? vm->cfg->cpu : "host",
			       err, sizeof(err));
	if (r == -EINVAL)
		return user_error(err);
	if (r) {
		log_error("%s", err);
		return EXIT_VMM_ERROR;
	}
	warn_cpu_model(vm);
	return 0;
}

/* Guest RAM on transparent huge pages where the host gives them to shmem
 * (mem.h): a 2 MiB free page report then frees one page, not 512. With
 * shmem_enabled=never (or deny, or no THP) nothing changes. A failed
 * advice leaves small pages, which work the same. */
static void use_thp(struct vm *vm)
{
	char own[sizeof(vm->cfg->files->shmem_thp)];
	const char *setting = own;
	if (vm->cfg->files)
		setting = vm->cfg->files->shmem_thp;
	else
		mem_thp_host_setting(own, sizeof(own));
	const char *shown = setting[0] ? setting : "absent";
	int r = mem_thp_allows(setting) ? mem_use_thp(&vm->mem) : 0;
	if (r)
		log_warn("guest RAM: MADV_HUGEPAGE: %s: 4 KiB pages", strerror(-r));
	else
		log_info("guest RAM: %llu MiB memfd, %s (shmem_enabled: %s)",
			 (unsigned long long)(vm->mem.size >> 20),
			 vm->mem.thp ? "transparent huge pages" : "4 KiB pages", shown);
}

static int create_platform(struct vm *vm)
{
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return vm_error("KVM_CREATE_VM", errno);
	/* Needed on VMX only; other backends may refuse, which is harmless. */
	ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS);
	uint64_t identity = LAYOUT_KVM_IDENTITY;
	ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity);

	int r = guest_cpu_setup_vm(&vm->cpu, vm->vm_fd);
	if (r)
		return vm_error("CPU model (PMU)", r);
	r = mem_create(&vm->mem, vm->cfg->mem_size);
	if (r)
		return vm_error("guest memory", r);
	use_thp(vm);
	/* Before any vCPU: a dirty ring can only be enabled now. */
	r = dirty_init(&vm->dirty, vm, vm->cfg->dirty_choice, vm->cfg->dirty_ring_entries);
	if (r)
		return vm_error("dirty tracking", r);
	for (int i = 0; i < vm->mem.nregions; i++) {
		const struct mem_region *reg = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = (uint32_t)i,
			.guest_phys_addr = reg->gpa,
			.memory_size = reg->size,
			.userspace_addr = (uint64_t)(uintptr_t)(vm->mem.host + reg->offset),
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return vm_error("KVM_SET_USER_MEMORY_REGION", errno);
	}
	/* Memory slots before the irqchip: with an in-kernel irqchip present
	 * each slot update waits for an SRCU grace period (~6 ms here). */
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return vm_error("KVM_CREATE_IRQCHIP", errno);
	for (unsigned i = 0; i < 24; i++)
		vm->isa_irq[i] = (struct irq_line){ .set_level = kvm_irq_line_set, .gsi = i, .opaque = vm };
	return 0;
}

/* The in-kernel PIT, on a thread: KVM_CREATE_PIT2 creates a kernel worker
 * thread and waits for it, the longest step of creating a VM on a busy
 * host. It holds kvm->lock meanwhile, which KVM_CREATE_VCPU takes too, so
 * it starts after the vCPUs exist; the devices and, on a restore, the
 * whole state load happen while it runs. */
static void *pit_thread(void *opaque)
{
	struct vm *vm = opaque;
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	/* QEMU's kvm-pit.lost_tick_policy=discard: ticks the guest missed
	 * are dropped rather than delivered late in a burst. */
	struct kvm_reinject_control reinject = { .pit_reinject = 0 };
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		vm->pit_status = vm_error("KVM_CREATE_PIT2", errno);
	else if (vm->cfg->pit_discard && ioctl(vm->vm_fd, KVM_REINJECT_CONTROL, &reinject) < 0)
		vm->pit_status = vm_error("KVM_REINJECT_CONTROL", errno);
	return NULL;
}

static int pit_start(struct vm *vm)
{
	/* Only a restored or incoming VM has work to overlap, and it is made
	 * before any seccomp filter (a VM rebuilt later makes no thread). */
	int r = vm->cfg->from_state ? pthread_create(&vm->pit_thread, NULL, pit_thread, vm) : -1;
	if (r) {
		pit_thread(vm);   /* no thread: do it here */
		return vm->pit_status;
	}
	vm->pit_started = true;
	return 0;
}

int vm_pit_ready(struct vm *vm)
{
	if (vm->pit_started) {
		pthread_join(vm->pit_thread, NULL);
		vm->pit_started = false;
	}
	if (vm->pit_status)
		return vm->pit_status;
	if (vm->pit_pending) {
		vm->pit_pending = false;
		if (ioctl(vm->vm_fd, KVM_SET_PIT2, &vm->pit_state) < 0)
			return vm_error("KVM_SET_PIT2", errno);
	}
	return 0;
}

/* The devices kvm-unit-tests expects of QEMU; a normal VM has none. */
static int create_test_devices(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	int r;
	if (cfg->fw_cfg) {
		if (!(vm->fw_cfg = fw_cfg_create(vm->ncpus, cfg->mem_size)))
			return vm_error("fw_cfg", ENOMEM);
		if ((r = bus_register(&vm->pio, FW_CFG_PORT_SEL, FW_CFG_PORT_LEN, &fw_cfg_ops, vm->fw_cfg, "fw_cfg")))
			return vm_error("port registration", r);
	}
	if (cfg->pc_testdev) {
		if (!(vm->testdev = pc_testdev_create(vm->isa_irq, &vm->mem)))
			return vm_error("pc-testdev", ENOMEM);
		if ((r = pc_testdev_register(vm->testdev, &vm->pio, &vm->mmio)))
			return vm_error("pc-testdev registration", r);
	}
	if (cfg->rtc) {
		if (!(vm->rtc = rtc_create(NULL)))
			return vm_error("rtc", ENOMEM);
		if ((r = bus_register(&vm->pio, RTC_PORT, RTC_PORT_LEN, &rtc_ops, vm->rtc, "rtc")))
			return vm_error("port registration", r);
	}
	return 0;
}

static int create_devices(struct vm *vm)
{
	int r;
	vm->serial = serial_create(STDOUT_FILENO, &vm->isa_irq[IRQ_SERIAL_COM1]);
	vm->pm = acpi_pm_create(&vm->isa_irq[IRQ_ACPI_SCI], on_sleep, vm);
	if (!vm->serial || !vm->pm)
		return vm_error("devices", ENOMEM);
	if ((r = devstate_register(&vm->devstate, &serial_state_ops, 0, vm->serial)) ||
	    (r = devstate_register(&vm->devstate, &acpi_pm_state_ops, 0, vm->pm)))
		return vm_error("device state", r);
	if ((r = bus_register(&vm->pio, PORT_SERIAL_COM1, SERIAL_PORTS, &serial_ops, vm->serial, "serial")) ||
	    (r = bus_register(&vm->pio, PORT_I8042_DATA, 5, &i8042_ops, vm, "i8042")) ||
	    (r = bus_register(&vm->pio, PORT_ACPI_PM1A_EVT, 12, &acpi_pm_ops, vm->pm, "acpi-pm")))
		return vm_error("port registration", r);
	if (vm->cfg->debug_exit &&
	    (r = bus_register(&vm->pio, PORT_DEBUG_EXIT, 4, &debug_exit_ops, vm, "debug-exit")))
		return vm_error("port registration", r);
	if ((r = create_test_devices(vm)))
		return r;
	return vm_pci_create(vm);
}

int vm_create(struct vm *vm, const struct vm_config *cfg)
{
	memset(vm, 0, sizeof(*vm));
	vm->start_ns = now_ns();
	vm->cfg = cfg;
	vm->kvm_fd = vm->vm_fd = -1;
	vm->s3_efd = vm->s3_timer_fd = -1;
	vm->mem.fd = -1;
	vm->ncpus = cfg->ncpus;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	int r = loop_init(&vm->loop);
	if (r)
		return vm_error("event loop", r);
	if ((r = vm_suspend_init(vm)))
		return vm_error("event loop", r);
	if ((r = open_kvm(vm)) || (r = create_platform(vm)))
		return r;
	vm->vcpus = calloc(vm->ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return vm_error("vCPUs", ENOMEM);
	for (unsigned i = 0; i < vm->ncpus; i++)
		if ((r = vcpu_create(vm, i, &vm->vcpus[i])))
			return r == -ENOTSUP ? EXIT_USAGE : vm_error("creating vCPU", r);
	if ((r = pit_start(vm)) || (r = create_devices(vm)))
		return r;
	/* A restored VM waits for its PIT after loading its state. */
	if (!cfg->from_state && (r = vm_pit_ready(vm)))
		return r;
	/* Before the kernel is loaded: a kernel segment over page 0 wins, as
	 * over a real BIOS's data. A restored VM has its own. */
	if (cfg->bios_state && !cfg->from_state) {
		if ((r = bios_write_low_memory(&vm->mem)))
			return vm_error("BIOS data in low memory", r);
		if ((r = bios_program_chipset(vm->vm_fd)))
			return vm_error("programming the PIC and PIT", r);
	}

	char err[512];
	/* A restored or incoming VM gets its RAM and registers from the state. */
	if (!cfg->from_state && (r = boot_prepare(&vm->mem, cfg, &vm->boot, err, sizeof(err)))) {
		if (r == EXIT_USAGE)
			return user_error(err);
		log_error("%s", err);
		return r;
	}

	for (unsigned i = 0; i < vm->ncpus && !cfg->from_state; i++)
		if ((r = vcpu_init_boot_state(vm->vcpus[i])))
			return vm_error("setting vCPU boot state", r);
	return 0;
}

void vm_stop(struct vm *vm, enum vm_stop_reason reason, int exit_code)
{
	pthread_mutex_lock(&vm->lock);
	bool first = vm->stop_reason == STOP_NONE;
	if (first) {
		vm->stop_reason = reason;
		vm->exit_code = exit_code;
	}
	__atomic_store_n(&vm->state, VM_STOPPING, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&vm->cond);
	/* Under the lock, so events leave in the order the states changed. */
	if (first)
		control_state_event(vm, VM_STOPPING);
	pthread_mutex_unlock(&vm->lock);
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus && vm->vcpus[i])
			vcpu_kick(vm->vcpus[i]);
	loop_stop(&vm->loop);
}

int vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->state == VM_STOPPING) {
		pthread_mutex_unlock(&vm->lock);
		return -ESHUTDOWN;
	}
	bool was_running = vm->state == VM_RUNNING;
	__atomic_store_n(&vm->state, VM_PAUSED, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(vm->vcpus[i]);
	/* Bounded: a vCPU can be stuck outside KVM_RUN (e.g. blocked writing
	 * console output to a full pipe), and the caller is the event loop. */
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += VM_PAUSE_TIMEOUT_S;
	int w = 0;
	while (vm->paused_vcpus < vm->ncpus && vm->state == VM_PAUSED && w != ETIMEDOUT)
		w = pthread_cond_timedwait(&vm->cond, &vm->lock, &deadline);
	int r = vm->state == VM_PAUSED ? 0 : -ESHUTDOWN;
	if (r == 0 && vm->paused_vcpus < vm->ncpus) {
		log_warn("pause: %u of %u vCPUs did not stop within %d s; the VM keeps running",
			 vm->ncpus - vm->paused_vcpus, vm->ncpus, VM_PAUSE_TIMEOUT_S);
		if (was_running) {
			__atomic_store_n(&vm->state, VM_RUNNING, __ATOMIC_SEQ_CST);
			pthread_cond_broadcast(&vm->cond);
		}
		r = -ETIMEDOUT;
	}
	if (r == 0 && was_running)
		control_state_event(vm, VM_PAUSED);
	pthread_mutex_unlock(&vm->lock);
	/* Devices too: in-flight I/O lands in guest RAM now, before anyone
	 * copies RAM or device state, and no new request starts. */
	if (r == 0)
		devstate_quiesce(&vm->devstate);
	return r;
}

int vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	int r = 0;
	if (vm->suspended) {
		r = -EBUSY;             /* in S3: only the wake event (suspend.c) resumes */
	} else if (vm->state == VM_PAUSED) {
		devstate_resume(&vm->devstate);
		__atomic_store_n(&vm->state, VM_RUNNING, __ATOMIC_SEQ_CST);
		pthread_cond_broadcast(&vm->cond);
		control_state_event(vm, VM_RUNNING);
	} else if (vm->state == VM_STOPPING) {
		r = -ESHUTDOWN;
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

/* --test-seccomp-violate: a forbidden call from a thread of the kind asked
 * for, once that thread is filtered. */
static void *violate_thread(void *opaque)
{
	struct vm *vm = opaque;
	sandbox_test_violate(vm->cfg->test_violate_ioctl, vm->vm_fd);
	return NULL;
}

/* Kinds with no thread of their own on this VM (I/O, migration) get one
 * that only makes the call; it starts before main's filter, as a worker
 * would, so only its own filter stands in the way. */
static void violate_start(struct vm *vm)
{
	int kind = vm->cfg->test_violate;
	if (kind == THREAD_IO || kind == THREAD_MIGRATION) {
		pthread_t t;
		struct sandbox_fds fds = SANDBOX_NO_FDS;
		fds.vm = vm->vm_fd;
		if (sandbox_thread_create(&t, (enum thread_kind)kind, &fds, sandbox_kind_name(kind),
					  violate_thread, vm) == 0)
			pthread_join(t, NULL);
	}
}

/* Every thread of the VM is filtered: let the guest run. */
static void vm_go(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->state == VM_PAUSED) {
		__atomic_store_n(&vm->state, VM_RUNNING, __ATOMIC_SEQ_CST);
		pthread_cond_broadcast(&vm->cond);
		control_state_event(vm, VM_RUNNING);
	}
	pthread_mutex_unlock(&vm->lock);
}

enum vm_stop_reason vm_run(struct vm *vm)
{
	int r = console_attach(vm);
	if (r)
		log_warn("console input unavailable: %s", strerror(-r));
	/* The vCPU threads start parked (paused): each installs its seccomp
	 * filter before vcpu_start returns, then this thread installs its
	 * own, and only then does the first KVM_RUN happen. */
	__atomic_store_n(&vm->state, VM_PAUSED, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if ((r = vcpu_start(vm->vcpus[i]))) {
			log_error("starting vCPU %u: %s", i, strerror(-r));
			vm_stop(vm, STOP_ERROR, EXIT_VMM_ERROR);
			break;
		}
	}
	violate_start(vm);
	struct sandbox_fds fds = SANDBOX_NO_FDS;
	fds.kvm = vm->kvm_fd;
	fds.vm = vm->vm_fd;
	fds.api_dir = control_dir_fd(vm->control);
	if (sandbox_enter(THREAD_MAIN, &fds, "main"))
		vm_stop(vm, STOP_ERROR, EXIT_VMM_ERROR);
	if (vm->cfg->test_violate == THREAD_MAIN)
		sandbox_test_violate(vm->cfg->test_violate_ioctl, vm->vm_fd);
	vm_go(vm);
	r = loop_run(&vm->loop);
	if (r)
		vm_stop(vm, STOP_ERROR, EXIT_VMM_ERROR);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = vm->vcpus[i];
		if (v->started) {
			vcpu_kick(v);
			pthread_join(v->thread, NULL);
			v->started = false;
		}
	}
	console_detach();
	return vm->stop_reason;
}

void vm_destroy(struct vm *vm)
{
	/* Threads that work on the VM: a migration, a snapshot, the lazy
	 * restore loader. */
	migrate_finish(vm);
	snapshot_finish(vm);
	if (vm->pit_started)
		vm_pit_ready(vm);
	if (vm->vcpus) {
		for (unsigned i = 0; i < vm->ncpus; i++)
			vcpu_destroy(vm->vcpus[i]);
		free(vm->vcpus);
		vm->vcpus = NULL;
	}
	vm_pci_destroy(vm);
	serial_destroy(vm->serial);
	acpi_pm_destroy(vm->pm);
	fw_cfg_destroy(vm->fw_cfg);
	pc_testdev_destroy(vm->testdev);
	rtc_destroy(vm->rtc);
	devstate_free(&vm->devstate);
	if (vm->dirty.vm)
		dirty_destroy(&vm->dirty);
	vm_suspend_destroy(vm);
	mem_destroy(&vm->mem);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	guest_cpu_free(&vm->cpu);
	if (vm->kvm_fd >= 0 && !vm->kvm_fd_borrowed)
		close(vm->kvm_fd);
	loop_destroy(&vm->loop);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	pthread_mutex_destroy(&vm->lock);
	pthread_cond_destroy(&vm->cond);
}
