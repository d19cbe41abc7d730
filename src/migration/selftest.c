/* Save -> fresh VM -> load -> save -> compare, driven from `ember run`. */
#include "migration/selftest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "migration/vmsave.h"
#include "vcpu.h"
#include "vm.h"

static void on_timer(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	struct selftest *st = vm->selftest;
	loop_remove(&vm->loop, st->timer_fd);
	close(st->timer_fd);
	st->timer_fd = -1;
	if (vm_pause(vm))
		return;   /* the guest is already stopping */
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	if (!ioctl(vm->vcpus[0]->fd, KVM_GET_REGS, &regs) && !ioctl(vm->vcpus[0]->fd, KVM_GET_SREGS, &sregs))
		fprintf(stderr, "ember: selftest: vCPU 0 paused at CPL%u, RIP %#llx\n", sregs.cs.selector & 3,
			(unsigned long long)regs.rip);
	struct state_writer w;
	uint64_t t0 = now_ns();
	int r = state_writer_init(&w, state_buf_sink(&st->saved));
	if (!r)
		r = vm_save(vm, &w);
	state_writer_destroy(&w);
	if (r) {
		log_error("save/restore self-test: saving failed: %s", strerror(-r));
		vm_stop(vm, STOP_ERROR, EXIT_VMM_ERROR);
		return;
	}
	fprintf(stderr, "ember: selftest: saved %zu bytes in %.1f ms after %u ms\n", st->saved.len,
		(double)(now_ns() - t0) / 1e6, st->ms);
	st->fired = true;
	vm_stop(vm, STOP_QUIT, EXIT_GUEST_OFF);
}

int selftest_arm(struct vm *vm, struct selftest *st)
{
	vm->selftest = st;
	st->timer_fd = loop_add_timer(&vm->loop, (uint64_t)st->ms * 1000000ULL, 0, on_timer, vm);
	return st->timer_fd < 0 ? st->timer_fd : 0;
}

int selftest_restore(struct vm *fresh, struct selftest *st)
{
	char err[512];
	uint64_t t0 = now_ns();
	st->saved.pos = 0;
	int r = vm_load(fresh, state_buf_source(&st->saved), err, sizeof(err));
	if (r) {
		log_error("save/restore self-test: loading into a fresh VM failed: %s", err);
		state_buf_free(&st->saved);
		return EXIT_VMM_ERROR;
	}
	double load_ms = (double)(now_ns() - t0) / 1e6;
	fresh->selftest = NULL;
	struct state_buf again = { 0 };
	struct state_writer w;
	r = state_writer_init(&w, state_buf_sink(&again));
	if (!r)
		r = vm_save(fresh, &w);
	state_writer_destroy(&w);
	if (r) {
		state_buf_free(&again);
		log_error("save/restore self-test: saving the restored VM failed: %s", strerror(-r));
		return EXIT_VMM_ERROR;
	}
	unsigned skipped = 0;
	r = state_compare(&st->saved, &again, &skipped, err, sizeof(err));
	state_buf_free(&again);
	state_buf_free(&st->saved);
	if (r) {
		log_error("save/restore self-test: the state after restore differs: %s",
			  r < 0 ? strerror(-r) : err);
		return EXIT_VMM_ERROR;
	}
	fprintf(stderr, "ember: selftest: restored into a fresh VM in %.1f ms; saved again: identical "
		"(%u volatile fields skipped)\n", load_ms, skipped);
	return 0;
}

void selftest_free(struct selftest *st)
{
	state_buf_free(&st->saved);
	if (st->timer_fd >= 0)
		close(st->timer_fd);
	st->timer_fd = -1;
}
