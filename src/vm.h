/* The VM object: KVM fds, guest memory, vCPUs, the buses and devices, and
 * the lifecycle (run, pause, resume, stop). */
#ifndef EMBER_VM_H
#define EMBER_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/x86/boot.h"
#include "arch/x86/guestcpu.h"
#include "arch/x86/layout.h"
#include "bus.h"
#include "config.h"
#include "devices/pci.h"
#include "dirty.h"
#include "discard.h"
#include "irq.h"
#include "kvm_irq.h"
#include "loop.h"
#include "mem.h"
#include "migration/devstate.h"

struct vcpu;
struct virtio_dev;
struct serial;
struct acpi_pm;
struct selftest;
struct fw_cfg;
struct pc_testdev;
struct pci_testdev;
struct rtc;
struct control_server;
struct migration;
struct lazy_restore;
struct snapshot_track;

enum vm_state { VM_CREATED, VM_RUNNING, VM_PAUSED, VM_STOPPING };

/* Why the VM stopped, decided once by the first caller of vm_stop. */
enum vm_stop_reason {
	STOP_NONE,
	STOP_POWEROFF,     /* guest powered off: exit 0 */
	STOP_RESET,        /* guest reset: exit 0 or restart */
	STOP_DEBUG_EXIT,   /* debug-exit port: exit (v<<1)|1 */
	STOP_CRASH,        /* triple fault, internal error */
	STOP_QUIT,         /* user asked (Ctrl-A x, ctl quit) */
	STOP_ERROR,        /* Ember failed */
	STOP_MIGRATED,     /* the VM moved to a migration destination: exit 0 */
};

struct vm {
	const struct vm_config *cfg;
	int kvm_fd;
	bool kvm_fd_borrowed;         /* cfg->files owns kvm_fd */
	int vm_fd;
	int run_size;                 /* mmap size of struct kvm_run */
	const char *backend;          /* "kvm_pvm", "kvm_intel", "kvm_amd" */
	struct guest_mem mem;
	struct dirty dirty;           /* dirty page tracking (snapshots, migration) */
	struct bus pio, mmio;
	struct loop loop;
	struct boot_info boot;
	unsigned ncpus;
	struct guest_cpu cpu;         /* CPU model, MSR list, KVM state caps */
	struct vcpu **vcpus;
	struct irq_line isa_irq[24];  /* IOAPIC pins (ISA lines 0-15) through KVM_IRQ_LINE */
	/* KVM_CREATE_PIT2 waits for a kernel thread to be created (~0.3 ms on
	 * an idle host, 4-8 ms on a busy one): it runs on a thread of its
	 * own while the vCPUs and the state are set up (vm_pit_ready). */
	pthread_t pit_thread;
	bool pit_started;
	int pit_status;               /* 0 or an exit code, once joined */
	bool pit_pending;             /* a restored PIT state waits for the PIT */
	struct kvm_pit_state2 pit_state;

	/* PCI (vm_pci.c) */
	struct pci_host pci;
	struct kvm_irq kirq;
	bool kirq_ok, pci_ok;
	struct vm_intx_pin {
		struct irq_line line;
		struct vm *vm;
		bool level;
	} intx_pins[PCI_SLOTS];
	unsigned intx_count[IRQ_PCI_INTX_COUNT];  /* devices asserting each INTx GSI */
	pthread_mutex_t intx_lock;
	struct virtio_dev *disks[CONFIG_MAX_DISKS];
	struct virtio_dev *nets[CONFIG_MAX_NETS];
	struct virtio_dev *rng;
	struct pci_testdev *pci_testdev;  /* --pci-testdev */
	struct virtio_dev *balloon;   /* --balloon */
	struct discard_map discard;   /* guest RAM the balloon discarded (bits NULL: none) */

	struct serial *serial;
	struct acpi_pm *pm;
	struct selftest *selftest;     /* --test-save-restore-after, else NULL */
	struct fw_cfg *fw_cfg;        /* --fw-cfg */
	struct pc_testdev *testdev;   /* --pc-testdev */
	struct rtc *rtc;              /* --rtc */
	struct devstate devstate;     /* device state sections (snapshots, migration) */
	struct control_server *control;   /* --api-socket, set by control_attach */
	struct migration *migration;  /* the current or last outgoing migration */
	struct lazy_restore *lazy;    /* --restore: guest RAM still loading on demand */
	struct snapshot_track *snap;  /* the last snapshot, for diff snapshots */
	uint64_t start_ns;

	pthread_mutex_t lock;         /* state, stop, pause handshake */
	pthread_cond_t cond;
	enum vm_state state;
	unsigned paused_vcpus;
	enum vm_stop_reason stop_reason;
	int exit_code;
	/* ACPI S3 (suspend.c): all vCPUs parked, waiting for a wake event. */
	bool suspended;
	int s3_efd;                   /* vCPU thread -> loop: entering S3 */
	int s3_timer_fd;              /* the RTC wake, -1 when none */
};

/* Create KVM objects, memory, devices; load the kernel. Returns 0 or an
 * exit code (EXIT_USAGE for bad user input, with a message printed). */
int vm_create(struct vm *vm, const struct vm_config *cfg);
/* Start vCPU threads and run the event loop until the VM stops. Returns
 * the reason; vm->exit_code holds the process exit status. */
enum vm_stop_reason vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Wait for the in-kernel PIT (vm_create starts it) and apply a PIT state
 * a restore left pending. 0 or an exit code (logged). */
int vm_pit_ready(struct vm *vm);

/* Thread-safe: stop the VM (first reason wins). */
void vm_stop(struct vm *vm, enum vm_stop_reason reason, int exit_code);
/* Thread-safe (not from a vCPU thread): stop all vCPUs outside KVM_RUN /
 * let them go on. 0 or -errno (vm_resume: -EBUSY while the guest is in
 * ACPI S3, which only its wake event ends). */
int vm_pause(struct vm *vm);
/* vm_pause gives up (-ETIMEDOUT, VM left running) after this long. */
#define VM_PAUSE_TIMEOUT_S 5
int vm_resume(struct vm *vm);

uint64_t now_ns(void);
/* CLOCK_MONOTONIC at the top of main(), for start-up timing. */
extern uint64_t ember_start_ns;

#endif
