#include "vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "arch/x86/multiboot.h"
#include "dirty.h"
#include "log.h"
#include "sandbox/sandbox.h"
#include "vm.h"

#define VCPU_KICK_SIGNAL SIGUSR1

static void kick_handler(int sig)
{
	(void)sig;
}

/* Once per process: a VM built after the seccomp filters (restart) needs
 * no rt_sigaction. */
static void install_kick_handler(void)
{
	static bool installed;
	if (installed)
		return;
	installed = true;
	struct sigaction sa = { .sa_handler = kick_handler };
	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);   /* no SA_RESTART: KVM_RUN returns EINTR */
}

/* Kept in *lapic: what a reset returns to. */
static int set_lapic_lint(int fd, struct kvm_lapic_state *lapic)
{
	if (ioctl(fd, KVM_GET_LAPIC, lapic) < 0)
		return -errno;
	/* Virtual-wire mode as a BIOS leaves it: LINT0 ExtINT, LINT1 NMI. */
	uint32_t *lint0 = (uint32_t *)&lapic->regs[0x350];
	uint32_t *lint1 = (uint32_t *)&lapic->regs[0x360];
	*lint0 = (*lint0 & ~0x700u) | (7u << 8);
	*lint1 = (*lint1 & ~0x700u) | (4u << 8);
	if (ioctl(fd, KVM_SET_LAPIC, lapic) < 0)
		return -errno;
	return 0;
}

int vcpu_create(struct vm *vm, unsigned index, struct vcpu **out)
{
	struct vcpu *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->vm = vm;
	v->index = index;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (v->fd < 0) {
		int err = -errno;
		free(v);
		return err;
	}
	v->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		int err = -errno;
		close(v->fd);
		free(v);
		return err;
	}
	int r = guest_cpu_setup_vcpu(&vm->cpu, v->fd, index, vm->ncpus);
	if (!r)
		r = set_lapic_lint(v->fd, &v->reset_lapic);
	if (!r)
		r = dirty_vcpu_init(&vm->dirty, v);
	if (r) {
		vcpu_destroy(v);
		return r;
	}
	install_kick_handler();
	*out = v;
	return 0;
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v)
		return;
	dirty_vcpu_destroy(&v->vm->dirty, v);
	if (v->run && v->run != MAP_FAILED)
		munmap(v->run, (size_t)v->vm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	free(v);
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = code64 ? 0 : 1, .s = 1, .l = code64 ? 1 : 0, .g = 1,
	};
}

/* The Linux 64-bit boot protocol state (Documentation/arch/x86/boot.rst,
 * "64-bit Boot Protocol"): long mode, identity map, flat segments with
 * __BOOT_CS/__BOOT_DS, RSI = boot_params, interrupts off. */
static void long64_state(struct kvm_sregs *sregs, struct kvm_regs *regs, const struct boot_info *b)
{
	set_seg(&sregs->cs, BOOT_GDT_CODE, 0xb, true);
	sregs->cr0 = 0x80000033;        /* PG | NE | ET | MP | PE */
	sregs->cr3 = LAYOUT_PML4;
	sregs->cr4 = 0x20;              /* PAE */
	sregs->efer = 0x500;            /* LME | LMA */
	regs->rsi = b->boot_params;
}

/* Multiboot 0.6.96 section 3.2: 32-bit protected mode, paging off, flat
 * 4 GiB code and data segments, EAX = 0x2BADB002, EBX = the boot
 * information, IF = 0. The GDTR points at Ember's flat 32-bit GDT with the
 * same selectors, though the kernel must load its own. */
static void prot32_state(struct kvm_sregs *sregs, struct kvm_regs *regs, const struct boot_info *b)
{
	set_seg(&sregs->cs, BOOT_GDT_CODE, 0xb, false);
	sregs->cr0 = 0x11;              /* ET | PE */
	sregs->cr3 = 0;
	sregs->cr4 = 0;
	sregs->efer = 0;
	regs->rax = MB_BOOT_MAGIC;
	regs->rbx = b->mb_info;
}

int vcpu_init_boot_state(struct vcpu *v)
{
	struct vm *vm = v->vm;
	bool runs_now = v->index == 0 || vm->boot.start_all_vcpus;
	if (!runs_now)
		return 0;   /* an AP that waits for INIT/SIPI from the guest */

	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	struct kvm_regs regs = { 0 };
	set_seg(&sregs.ds, BOOT_GDT_DATA, 0x3, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.tr = (struct kvm_segment){ .selector = BOOT_GDT_TSS, .limit = 0x67, .type = 0xb, .present = 1 };
	sregs.gdt.base = LAYOUT_BOOT_GDT;
	sregs.gdt.limit = 5 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	if (vm->boot.mode == BOOT_PROT32)
		prot32_state(&sregs, &regs, &vm->boot);
	else
		long64_state(&sregs, &regs, &vm->boot);
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	regs.rip = vm->boot.entry;
	regs.rflags = 0x2;
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;

	struct kvm_fpu fpu = { 0 };
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;

	if (v->index != 0) {
		struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
		if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
			return -errno;
	}
	return 0;
}

static void real_mode_seg(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	*s = (struct kvm_segment){ .base = (uint64_t)sel << 4, .limit = 0xffff, .selector = sel,
				   .type = type, .present = 1, .s = 1 };
}

int vcpu_reset_for_wake(struct vcpu *v, uint32_t waking_vector)
{
	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	/* Real mode as after a reset, caches on (the firmware would have
	 * turned them on before jumping to the vector). */
	uint16_t cs = v->index == 0 ? (uint16_t)(waking_vector >> 4) : 0;
	real_mode_seg(&sregs.cs, cs, 0xb);
	real_mode_seg(&sregs.ds, 0, 0x3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.tr = (struct kvm_segment){ .limit = 0xffff, .type = 0xb, .present = 1 };
	sregs.ldt = (struct kvm_segment){ .limit = 0xffff, .type = 0x2, .present = 1 };
	sregs.gdt = (struct kvm_dtable){ .limit = 0xffff };
	sregs.idt = (struct kvm_dtable){ .limit = 0x3ff };
	sregs.cr0 = 0x10;               /* ET */
	sregs.cr2 = sregs.cr3 = sregs.cr4 = 0;
	sregs.efer = 0;
	sregs.apic_base = LAYOUT_LAPIC | (1u << 11) | (v->index == 0 ? 1u << 8 : 0);
	memset(sregs.interrupt_bitmap, 0, sizeof(sregs.interrupt_bitmap));
	struct kvm_regs regs = { .rip = v->index == 0 ? waking_vector & 0xf : 0, .rflags = 0x2 };
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	struct kvm_vcpu_events ev = { 0 };
	struct kvm_mp_state mp = { .mp_state = v->index == 0 ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_INIT_RECEIVED };
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(v->fd, KVM_SET_REGS, &regs) < 0 ||
	    ioctl(v->fd, KVM_SET_FPU, &fpu) < 0 || ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0 ||
	    ioctl(v->fd, KVM_SET_LAPIC, &v->reset_lapic) < 0 || ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
		return -errno;
	return 0;
}

static void report_internal_error(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	struct kvm_regs regs = { 0 };
	struct kvm_sregs sregs = { 0 };
	ioctl(v->fd, KVM_GET_REGS, &regs);
	ioctl(v->fd, KVM_GET_SREGS, &sregs);

	uint8_t insn[16];
	unsigned ninsn = 0;
	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
	    (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		ninsn = run->emulation_failure.insn_size;
		if (ninsn > sizeof(insn))
			ninsn = sizeof(insn);
		memcpy(insn, run->emulation_failure.insn_bytes, ninsn);
	} else {
		struct kvm_translation tr = { .linear_address = regs.rip + sregs.cs.base };
		if (ioctl(v->fd, KVM_TRANSLATE, &tr) == 0 && tr.valid) {
			for (ninsn = 15; ninsn > 0; ninsn--)
				if (mem_read(&v->vm->mem, insn, tr.physical_address, ninsn) == 0)
					break;
		}
	}
	char bytes[64] = "unavailable";
	for (unsigned i = 0; i < ninsn; i++)
		snprintf(bytes + i * 3, sizeof(bytes) - i * 3, "%02x ", insn[i]);
	if (ninsn)
		bytes[ninsn * 3 - 1] = '\0';
	log_error("KVM internal error (suberror %u%s) on vCPU %u at RIP 0x%llx (CPL %u), instruction bytes: %s",
		  run->internal.suberror,
		  run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? ": instruction emulation failed" : "",
		  v->index, (unsigned long long)regs.rip, sregs.cs.selector & 3, bytes);
	if (v->vm->backend && !strcmp(v->vm->backend, "kvm_pvm"))
		log_error("this host's KVM (kvm_pvm) cannot emulate that instruction for guest kernel code");
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	unsigned size = run->io.size;
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		uint64_t val = 0;
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			memcpy(&val, data, size);
			bus_write(&v->vm->pio, run->io.port, size, val);
		} else {
			bus_read(&v->vm->pio, run->io.port, size, &val);
			memcpy(data, &val, size);
		}
	}
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	unsigned len = run->mmio.len;
	if (len == 0 || len > 8)
		return;
	uint64_t val = 0;
	if (run->mmio.is_write) {
		memcpy(&val, run->mmio.data, len);
		bus_write(&v->vm->mmio, run->mmio.phys_addr, len, val);
	} else {
		bus_read(&v->vm->mmio, run->mmio.phys_addr, len, &val);
		memcpy(run->mmio.data, &val, len);
	}
}

/* Returns false when the vCPU thread should end. */
static bool handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	struct vm *vm = v->vm;
	if (run->exit_reason < VCPU_EXIT_REASONS)
		__atomic_add_fetch(&v->exits[run->exit_reason], 1, __ATOMIC_RELAXED);
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(v);
		return true;
	case KVM_EXIT_DIRTY_RING_FULL:
		/* The vCPU stays out of the guest until its ring is harvested
		 * and reset (KVM would exit again at once otherwise). */
		dirty_ring_full(&vm->dirty, v);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_DEBUG:
		return true;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; nothing will wake us. */
		log_error("vCPU %u halted with nothing to wake it", v->index);
		vm_stop(vm, STOP_CRASH, EXIT_GUEST_CRASH);
		return false;
	case KVM_EXIT_SHUTDOWN: {
		struct kvm_regs regs = { 0 };
		struct kvm_sregs sregs = { 0 };
		ioctl(v->fd, KVM_GET_REGS, &regs);
		ioctl(v->fd, KVM_GET_SREGS, &sregs);
		/* On SVM, KVM reinitializes the vCPU (RESET state) before it
		 * reports the shutdown: where the guest faulted is gone. */
		bool reset = regs.rip == 0xfff0 && sregs.cs.base == 0xffff0000;
		if (reset)
			log_error("guest triple fault (KVM_EXIT_SHUTDOWN) on vCPU %u; KVM reset the vCPU "
				  "before reporting it (as on SVM), so where it faulted is not known", v->index);
		else
			log_error("guest triple fault (KVM_EXIT_SHUTDOWN) on vCPU %u at RIP 0x%llx",
				  v->index, (unsigned long long)regs.rip);
		vm_stop(vm, STOP_CRASH, EXIT_GUEST_CRASH);
		return false;
	}
	case KVM_EXIT_INTERNAL_ERROR:
		report_internal_error(v);
		vm_stop(vm, STOP_CRASH, EXIT_GUEST_CRASH);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		log_error("KVM could not enter vCPU %u (hardware reason 0x%llx)", v->index,
			  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vm_stop(vm, STOP_CRASH, EXIT_GUEST_CRASH);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			vm_stop(vm, STOP_POWEROFF, EXIT_GUEST_OFF);
			break;
		case KVM_SYSTEM_EVENT_RESET:
			vm_stop(vm, STOP_RESET, EXIT_GUEST_OFF);
			break;
		default:
			log_error("guest crashed (system event %u) on vCPU %u", run->system_event.type, v->index);
			vm_stop(vm, STOP_CRASH, EXIT_GUEST_CRASH);
			break;
		}
		return false;
	default:
		log_error("vCPU %u: unexpected KVM exit reason %u", v->index, run->exit_reason);
		vm_stop(vm, STOP_ERROR, EXIT_VMM_ERROR);
		return false;
	}
}

/* Park here while the VM is paused; false when it is stopping. */
static bool wait_while_paused(struct vcpu *v)
{
	struct vm *vm = v->vm;
	pthread_mutex_lock(&vm->lock);
	while (vm->state == VM_PAUSED) {
		vm->paused_vcpus++;
		pthread_cond_broadcast(&vm->cond);
		pthread_cond_wait(&vm->cond, &vm->lock);
		vm->paused_vcpus--;
	}
	bool go_on = vm->state != VM_STOPPING;
	pthread_mutex_unlock(&vm->lock);
	return go_on;
}

/* An I/O or MMIO read is finished (the data in RAX, RIP moved on) only by
 * the next KVM_RUN; run once with immediate_exit so the state a paused vCPU
 * shows is whole (api.rst, KVM_RUN and immediate_exit). */
static void complete_exit(struct vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (ioctl(v->fd, KVM_RUN, 0) == 0)
		log_warn("vCPU %u: KVM_RUN with immediate_exit returned an exit (%u)", v->index,
			 v->run->exit_reason);
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	bool exit_open = false;   /* the last KVM_RUN ended in an exit we handled */
	for (;;) {
		if (__atomic_load_n(&vm->state, __ATOMIC_SEQ_CST) != VM_RUNNING) {
			if (exit_open)
				complete_exit(v);
			exit_open = false;
			if (!wait_while_paused(v))
				break;
		}
		if (!v->first_run_ns) {
			if (v->index == 0 && vm->cfg->test_violate == THREAD_VCPU)
				sandbox_test_violate(vm->cfg->test_violate_ioctl, vm->vm_fd);
			v->first_run_ns = now_ns();
			if (v->index == 0)
				log_info("first KVM_RUN %.3f ms after start",
					 (double)(v->first_run_ns - ember_start_ns) / 1e6);
		}
		if (__atomic_load_n(&v->throttle_until_ns, __ATOMIC_RELAXED))
			dirty_throttle_point(&vm->dirty, v);
		int r = ioctl(v->fd, KVM_RUN, 0);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				__atomic_add_fetch(&v->exits[KVM_EXIT_INTR], 1, __ATOMIC_RELAXED);
				continue;
			}
			log_error("vCPU %u: KVM_RUN: %s", v->index, strerror(errno));
			vm_stop(vm, STOP_ERROR, EXIT_VMM_ERROR);
			break;
		}
		if (!handle_exit(v))
			break;
		exit_open = true;
	}
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	sigset_t set, old;
	sigfillset(&set);
	/* The thread starts with everything blocked and unblocks the kick
	 * (and SIGSYS, the seccomp report). It returns filtered. */
	pthread_sigmask(SIG_SETMASK, &set, &old);
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->index);
	struct sandbox_fds fds = SANDBOX_NO_FDS;
	fds.vm = v->vm->vm_fd;
	fds.vcpu = v->fd;
	int r = sandbox_thread_create(&v->thread, THREAD_VCPU, &fds, name, vcpu_thread, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return r;
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (v->started)
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}
