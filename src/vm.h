/* The VM object: KVM fds, guest memory, vCPUs, the buses and devices, and
 * the lifecycle (run, pause, resume, stop). */
#ifndef EMBER_VM_H
#define EMBER_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/x86/boot.h"
#include "arch/x86/guestcpu.h"
#include "bus.h"
#include "config.h"
#include "irq.h"
#include "loop.h"
#include "mem.h"

struct vcpu;
struct serial;
struct acpi_pm;
struct selftest;
struct fw_cfg;
struct pc_testdev;
struct rtc;
struct control_server;

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
};

struct vm {
	const struct vm_config *cfg;
	int kvm_fd;
	bool kvm_fd_borrowed;         /* cfg->files owns kvm_fd */
	int vm_fd;
	int run_size;                 /* mmap size of struct kvm_run */
	const char *backend;          /* "kvm_pvm", "kvm_intel", "kvm_amd" */
	struct guest_mem mem;
	struct bus pio, mmio;
	struct loop loop;
	struct boot_info boot;
	unsigned ncpus;
	struct guest_cpu cpu;         /* CPU model, MSR list, KVM state caps */
	struct vcpu **vcpus;
	struct irq_line isa_irq[24];  /* IOAPIC pins (ISA lines 0-15) through KVM_IRQ_LINE */

	struct serial *serial;
	struct acpi_pm *pm;
	struct selftest *selftest;     /* --test-save-restore-after, else NULL */
	struct fw_cfg *fw_cfg;        /* --fw-cfg */
	struct pc_testdev *testdev;   /* --pc-testdev */
	struct rtc *rtc;              /* --rtc */
	struct control_server *control;   /* --api-socket, set by control_attach */
	uint64_t start_ns;

	pthread_mutex_t lock;         /* state, stop, pause handshake */
	pthread_cond_t cond;
	enum vm_state state;
	unsigned paused_vcpus;
	enum vm_stop_reason stop_reason;
	int exit_code;
};

/* Create KVM objects, memory, devices; load the kernel. Returns 0 or an
 * exit code (EXIT_USAGE for bad user input, with a message printed). */
int vm_create(struct vm *vm, const struct vm_config *cfg);
/* Start vCPU threads and run the event loop until the VM stops. Returns
 * the reason; vm->exit_code holds the process exit status. */
enum vm_stop_reason vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Thread-safe: stop the VM (first reason wins). */
void vm_stop(struct vm *vm, enum vm_stop_reason reason, int exit_code);
/* Thread-safe (not from a vCPU thread): stop all vCPUs outside KVM_RUN /
 * let them go on. 0 or -errno. */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);

uint64_t now_ns(void);
/* CLOCK_MONOTONIC at the top of main(), for start-up timing. */
extern uint64_t ember_start_ns;

#endif
