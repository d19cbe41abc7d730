#include "vm_pci.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/layout.h"
#include "control/control.h"
#include "devices/pci_testdev.h"
#include "devices/virtio/balloon.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"
#include "host.h"
#include "log.h"
#include "vm.h"

/* INTx: slot s drives GSI IRQ_PCI_INTX(s) (layout.h), written into its
 * PCI_INTERRUPT_LINE and described by the DSDT's _PRT and the MP table.
 * Several slots share a GSI, so the line is the OR of its devices. */
static void intx_set(struct irq_line *line, int level)
{
	struct vm_intx_pin *pin = (struct vm_intx_pin *)line;
	struct vm *vm = pin->vm;
	unsigned i = line->gsi - IRQ_PCI_INTX_FIRST;
	pthread_mutex_lock(&vm->intx_lock);
	if (pin->level != !!level) {
		pin->level = !!level;
		unsigned before = vm->intx_count[i];
		vm->intx_count[i] += level ? 1u : (unsigned)-1;
		if (!before != !vm->intx_count[i]) {
			struct kvm_irq_level irq = { .irq = line->gsi, .level = vm->intx_count[i] > 0 };
			if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
				log_warn("KVM_IRQ_LINE %u: %s", line->gsi, strerror(errno));
		}
	}
	pthread_mutex_unlock(&vm->intx_lock);
}

/* Plug into the next slot and join the state registry (instance: the
 * n-th device of its kind, as the command line orders them). */
static int plug(struct vm *vm, struct virtio_dev *vd, unsigned instance)
{
	int r = pci_host_add(&vm->pci, &vd->pci);
	if (r)
		log_error("%s: no room on the PCI bus: %s", vd->name, strerror(-r));
	else if ((r = devstate_register(&vm->devstate, virtio_state_ops(vd), instance, vd)))
		log_error("%s: device state: %s", vd->name, strerror(-r));
	return r;
}

/* The environment for the device that will land in the next free slot. */
static struct virtio_env env_for(struct vm *vm)
{
	unsigned slot = 1;
	while (slot < PCI_SLOTS && vm->pci.slots[slot])
		slot++;
	slot %= PCI_SLOTS;
	return (struct virtio_env){
		.mem = &vm->mem, .loop = &vm->loop, .msi = &vm->kirq.sink, .ioev = &vm->kirq.ioev,
		.intx = &vm->intx_pins[slot].line,
	};
}

static void on_balloon_stats(void *opaque, const struct balloon_info *info)
{
	control_balloon_event(opaque, info);
}

static int create_balloon(struct vm *vm)
{
	const struct balloon_config *bc = &vm->cfg->balloon;
	struct balloon_opts o = {
		.size = bc->size, .deflate_on_oom = bc->deflate_on_oom, .reporting = bc->reporting,
		.mode = bc->reporting_free ? BALLOON_FREE : BALLOON_DONTNEED,
		.stats_interval = bc->stats_interval, .on_stats = on_balloon_stats, .opaque = vm,
	};
	int r = discard_init(&vm->discard, vm->mem.size);
	if (r) {
		log_error("virtio-balloon: %s", strerror(-r));
		return EXIT_VMM_ERROR;
	}
	struct virtio_env env = env_for(vm);
	if ((r = virtio_balloon_create(&env, &o, &vm->discard, &vm->balloon))) {
		log_error("virtio-balloon: %s", strerror(-r));
		return EXIT_VMM_ERROR;
	}
	/* A restored or migrated VM gets its balloon from the stream's "vm"
	 * section (src/migration/vmsave.c), so both sides register one. */
	return plug(vm, vm->balloon, 0) ? EXIT_VMM_ERROR : 0;
}

struct discard_map *balloon_discarded(struct vm *vm)
{
	return vm->balloon ? &vm->discard : NULL;
}

int vm_pci_create(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	int r;
	pthread_mutex_init(&vm->intx_lock, NULL);
	for (unsigned s = 0; s < PCI_SLOTS; s++)
		vm->intx_pins[s] = (struct vm_intx_pin){
			.line = { .set_level = intx_set, .gsi = IRQ_PCI_INTX(s) },
			.vm = vm,
		};
	kvm_irq_init(&vm->kirq, vm->vm_fd);
	vm->kirq_ok = true;
	pci_host_init(&vm->pci, LAYOUT_PCI_MMIO32, LAYOUT_PCI_MMIO32_END, LAYOUT_PCI_MMIO64,
		      LAYOUT_PCI_MMIO64_END);
	vm->pci_ok = true;
	if ((r = pci_host_attach(&vm->pci, &vm->pio, &vm->mmio, LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_SIZE))) {
		log_error("PCI host bridge: %s", strerror(-r));
		return EXIT_VMM_ERROR;
	}
	if ((r = devstate_register(&vm->devstate, &pci_host_state_ops, 0, &vm->pci))) {
		log_error("PCI host bridge state: %s", strerror(-r));
		return EXIT_VMM_ERROR;
	}
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		const struct disk_config *d = &cfg->disks[i];
		struct blk_opts o = { .path = d->path, .readonly = d->readonly,
				      .serial = d->serial[0] ? d->serial : NULL };
		if (cfg->files && i < cfg->files->ndisks) {
			o.have_fd = true;
			o.fd = cfg->files->disk_fd[i];
		}
		char err[512] = "";
		struct virtio_env env = env_for(vm);
		if ((r = virtio_blk_create(&env, &o, &vm->disks[i], err, sizeof(err)))) {
			fprintf(stderr, "ember: error: %s\n", err[0] ? err : strerror(-r));
			return r == -ENOMEM ? EXIT_VMM_ERROR : EXIT_USAGE;
		}
		if (plug(vm, vm->disks[i], i))
			return EXIT_VMM_ERROR;
	}
	for (unsigned i = 0; i < cfg->nnets; i++) {
		const struct net_config *nc = &cfg->nets[i];
		struct net_opts o = { .tap = nc->tap, .mac = nc->has_mac ? nc->mac : NULL };
		if (cfg->files && i < cfg->files->ntaps) {
			o.have_fd = true;
			o.fd = cfg->files->tap_fd[i];
			o.ifname = cfg->files->tap_name[i];
		}
		char err[512] = "";
		struct virtio_env env = env_for(vm);
		if ((r = virtio_net_create(&env, &o, &vm->nets[i], err, sizeof(err)))) {
			fprintf(stderr, "ember: error: %s\n", err[0] ? err : strerror(-r));
			return r == -ENOMEM ? EXIT_VMM_ERROR : EXIT_USAGE;
		}
		if (plug(vm, vm->nets[i], i))
			return EXIT_VMM_ERROR;
	}
	if (cfg->rng) {
		struct virtio_env env = env_for(vm);
		if ((r = virtio_rng_create(&env, &vm->rng))) {
			log_error("virtio-rng: %s", strerror(-r));
			return EXIT_VMM_ERROR;
		}
		if (plug(vm, vm->rng, 0))
			return EXIT_VMM_ERROR;
	}
	if (cfg->pci_testdev) {
		if (!(vm->pci_testdev = pci_testdev_create())) {
			log_error("pci-testdev: %s", strerror(ENOMEM));
			return EXIT_VMM_ERROR;
		}
		if ((r = pci_host_add(&vm->pci, &vm->pci_testdev->pci))) {
			log_error("pci-testdev: no room on the PCI bus: %s", strerror(-r));
			return EXIT_VMM_ERROR;
		}
	}
	if (cfg->balloon.enabled && (r = create_balloon(vm)))
		return r;
	return 0;
}

void vm_pci_destroy(struct vm *vm)
{
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++) {
		virtio_blk_destroy(vm->disks[i]);
		vm->disks[i] = NULL;
	}
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++) {
		virtio_net_destroy(vm->nets[i]);
		vm->nets[i] = NULL;
	}
	virtio_rng_destroy(vm->rng);
	vm->rng = NULL;
	pci_testdev_destroy(vm->pci_testdev);
	vm->pci_testdev = NULL;
	virtio_balloon_destroy(vm->balloon);
	vm->balloon = NULL;
	discard_free(&vm->discard);
	if (vm->pci_ok)
		pci_host_destroy(&vm->pci);
	if (vm->kirq_ok)
		kvm_irq_destroy(&vm->kirq);
	vm->pci_ok = vm->kirq_ok = false;
	pthread_mutex_destroy(&vm->intx_lock);
}
