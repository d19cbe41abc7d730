/* The VM's PCI side: the host bridge, the KVM MSI/doorbell plumbing, INTx
 * pins on IOAPIC GSIs 16-23, and the virtio devices the config asks for. */
#ifndef EMBER_VM_PCI_H
#define EMBER_VM_PCI_H

struct vm;

/* 0, or an exit code (EXIT_USAGE for a bad device option, with a message). */
int vm_pci_create(struct vm *vm);
void vm_pci_destroy(struct vm *vm);

struct discard_map;
/* For snapshots and migration: the record of guest RAM the balloon
 * discarded (inflated pages, free page reports), or NULL when the VM has
 * no balloon. A page may be skipped (not read, not sent; it is zeros on
 * the other side) when discard_skippable()/discard_next_skippable() say
 * so: recorded AND still a hole in the memfd. See src/discard.h. */
struct discard_map *balloon_discarded(struct vm *vm);

#endif
