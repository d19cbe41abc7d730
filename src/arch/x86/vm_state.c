/* irqchip, PIT and kvmclock <-> the state stream. */
#include "arch/x86/vm_state.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "log.h"
#include "vm.h"

enum { T_PIC_MASTER = 1, T_PIC_SLAVE, T_IOAPIC };   /* "irqchip" v1 */
enum { T_PIT = 1 };                                 /* "pit" v1 */
enum { T_CLOCK = 1, T_CLOCK_FLAGS };                /* "clock" v1 */

static int kvm_err(const char *what)
{
	int err = -errno;
	log_error("%s: %s", what, strerror(errno));
	return err;
}

int vm_arch_save_devices(struct vm *vm, struct state_writer *w)
{
	int r = state_begin_section(w, "irqchip", 0, 1);
	if (r)
		return r;
	static const struct { uint32_t id; uint16_t tag; size_t size; } chips[] = {
		{ KVM_IRQCHIP_PIC_MASTER, T_PIC_MASTER, sizeof(struct kvm_pic_state) },
		{ KVM_IRQCHIP_PIC_SLAVE, T_PIC_SLAVE, sizeof(struct kvm_pic_state) },
		{ KVM_IRQCHIP_IOAPIC, T_IOAPIC, sizeof(struct kvm_ioapic_state) },
	};
	for (size_t i = 0; i < 3; i++) {
		struct kvm_irqchip chip = { .chip_id = chips[i].id };
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			return kvm_err("KVM_GET_IRQCHIP");
		state_put_blob(w, chips[i].tag, &chip.chip, chips[i].size);
	}
	if ((r = state_end_section(w)))
		return r;

	struct kvm_pit_state2 pit;
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return kvm_err("KVM_GET_PIT2");
	/* KVM_SET_PIT2 restarts each counter from its count "now"
	 * (kvm_pit_load_count), so the host-time load stamps carry nothing. */
	for (int i = 0; i < 3; i++)
		pit.channels[i].count_load_time = 0;
	if ((r = state_begin_section(w, "pit", 0, 1)))
		return r;
	state_put_blob(w, T_PIT, &pit, sizeof(pit));
	return state_end_section(w);
}

int vm_arch_load_irqchip(void *opaque, struct state_reader *r)
{
	struct vm *vm = opaque;
	static const struct { uint32_t id; uint16_t tag; size_t size; } chips[] = {
		{ KVM_IRQCHIP_PIC_MASTER, T_PIC_MASTER, sizeof(struct kvm_pic_state) },
		{ KVM_IRQCHIP_PIC_SLAVE, T_PIC_SLAVE, sizeof(struct kvm_pic_state) },
		{ KVM_IRQCHIP_IOAPIC, T_IOAPIC, sizeof(struct kvm_ioapic_state) },
	};
	struct kvm_irqchip chip[3];
	memset(chip, 0, sizeof(chip));
	for (size_t i = 0; i < 3; i++) {
		chip[i].chip_id = chips[i].id;
		int e = state_get_blob(r, chips[i].tag, &chip[i].chip, chips[i].size);
		if (e)
			return e;
	}
	for (size_t i = 0; i < 3; i++)
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip[i]) < 0)
			return state_fail(r, "KVM_SET_IRQCHIP %u: %s", chips[i].id, strerror(errno));
	return 0;
}

int vm_arch_load_pit(void *opaque, struct state_reader *r)
{
	struct vm *vm = opaque;
	struct kvm_pit_state2 pit;
	int e = state_get_blob(r, T_PIT, &pit, sizeof(pit));
	if (e)
		return e;
	if (pit.flags & ~KVM_PIT_FLAGS_HPET_LEGACY)
		return state_fail(r, "PIT flags %#x unknown", pit.flags);
	/* Applied by vm_pit_ready() once the PIT exists (vm_create makes it on
	 * a thread while the rest of the state loads). */
	vm->pit_state = pit;
	vm->pit_pending = true;
	return 0;
}

int vm_arch_save_clock(struct vm *vm, struct state_writer *w)
{
	struct kvm_clock_data c = { 0 };
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &c) < 0)
		return kvm_err("KVM_GET_CLOCK");
	int r = state_begin_section(w, "clock", 0, 1);
	if (r)
		return r;
	/* kvmclock runs while the VM is paused, like the TSC. */
	state_put_u64_volatile(w, T_CLOCK, c.clock);
	state_put_u32_volatile(w, T_CLOCK_FLAGS, c.flags);
	return state_end_section(w);
}

/* The guest's clock continues from the value saved: time does not jump
 * over the pause (snapshot semantics). Live migration that wants the
 * elapsed wall time counted uses KVM_CLOCK_REALTIME (api.rst 4.1,
 * KVM_VCPU_TSC_OFFSET) where the host offers it. */
int vm_arch_load_clock(void *opaque, struct state_reader *r)
{
	struct vm *vm = opaque;
	uint64_t clock;
	uint32_t flags;
	int e = state_get_u64(r, T_CLOCK, &clock);
	if (!e)
		e = state_get_u32(r, T_CLOCK_FLAGS, &flags);
	if (e)
		return e;
	struct kvm_clock_data c = { .clock = clock };
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &c) < 0)
		return state_fail(r, "KVM_SET_CLOCK: %s", strerror(errno));
	/* Read back: kvmclock runs on from the value set (api.rst
	 * KVM_SET_CLOCK), so the guest's clock may have moved on by the
	 * load's time, never back. */
	struct kvm_clock_data shown = { 0 };
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &shown) < 0)
		return state_fail(r, "KVM_GET_CLOCK: %s", strerror(errno));
	if (shown.clock < clock)
		return state_fail(r, "with the clock loaded, this host's KVM shows kvmclock %llu ns, saved %llu: it "
				  "would go back", (unsigned long long)shown.clock, (unsigned long long)clock);
	return 0;
}
